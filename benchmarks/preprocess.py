"""Preprocess benchmark: bronze -> silver on N generated fastText reviews (the Amazon polarity format).

    .venv/bin/python benchmarks/preprocess.py                 # 1M reviews
    .venv/bin/python benchmarks/preprocess.py --rows 3600000  # the full Amazon polarity train size

Generates the corpus, ingests it (timed), builds silver (timed) and prints rows/s per core for each
and the share of the preprocess time spent in each step, all measured in this run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from reviewlake.config import load_config  # noqa: E402
from reviewlake.generate import generate  # noqa: E402
from reviewlake.ingest import ingest  # noqa: E402
from reviewlake.preprocess import preprocess  # noqa: E402
from reviewlake.spark import get_spark  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--workdir", type=Path, help="keep files here (default: a temp folder)")
    args = p.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="reviewlake-bench-"))
    cores = os.cpu_count() or 1
    manifest = generate("fasttext", work / "corpus", args.rows, workers=cores)
    cfg = load_config("local", [f"paths.warehouse={work / 'warehouse'}", f"paths.metastore={work / 'metastore'}",
                                f"paths.reports={work / 'reports'}", f"spark.master=local[{cores}]",
                                "spark.conf={spark.ui.showConsoleProgress: 'false'}"])
    spark = get_spark(cfg, "reviewlake benchmark preprocess")
    t = time.perf_counter()
    ingested = ingest(spark, cfg, "fasttext", manifest.files[0])
    ingest_s = time.perf_counter() - t
    t = time.perf_counter()
    report = preprocess(spark, cfg, force=True)
    preprocess_s = time.perf_counter() - t
    per_core = report.rows_in / preprocess_s / cores
    print(f"ingest:     {ingested.rows_read:,} lines in {ingest_s:.1f}s "
          f"({ingested.rows_read / ingest_s / cores:,.0f} rows/s per core)")
    print(f"preprocess: {report.rows_in:,} bronze rows -> {report.rows_out:,} silver rows in {preprocess_s:.1f}s "
          f"({per_core:,.0f} rows/s per core on {cores} cores)")
    print(f"removed: {report.removed}")
    steps = dict(report.seconds)
    steps["other (bronze read, stats, weights)"] = max(preprocess_s - sum(steps.values()), 0.0)
    for step, seconds in steps.items():
        print(f"  {step:<38} {seconds:7.1f}s  {100 * seconds / preprocess_s:5.1f}%")
    print(f"ingest + preprocess: {ingest_s + preprocess_s:.1f}s for {args.rows:,} reviews")
    spark.stop()


if __name__ == "__main__":
    main()
