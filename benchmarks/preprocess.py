"""Preprocess benchmark: bronze -> silver on N generated fastText reviews (the Amazon polarity format).

    .venv/bin/python benchmarks/preprocess.py                 # 1M reviews
    .venv/bin/python benchmarks/preprocess.py --rows 3600000  # the full Amazon polarity train size

Generates the corpus, ingests it (timed), builds silver (timed) and prints rows/s per core for each
and the share of the preprocess time spent in each step, all measured in this run.
"""

from __future__ import annotations

import time

from _common import setup

from reviewlake.generate import generate
from reviewlake.ingest import ingest
from reviewlake.preprocess import preprocess
from reviewlake.spark import get_spark


def main() -> None:
    run = setup(__doc__)
    cores, cfg = run.cores, run.cfg
    manifest = generate("fasttext", run.work / "corpus", run.rows, workers=cores)
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
    print(f"planted by the generator: {manifest.reposts.get('exact', 0):,} exact and "
          f"{manifest.reposts.get('near', 0):,} near re-posts")
    steps = dict(report.seconds)
    steps["other (bronze read, stats, weights)"] = max(preprocess_s - sum(steps.values()), 0.0)
    for step, seconds in steps.items():
        print(f"  {step:<38} {seconds:7.1f}s  {100 * seconds / preprocess_s:5.1f}%")
    print(f"ingest + preprocess: {ingest_s + preprocess_s:.1f}s for {run.rows:,} reviews")
    spark.stop()


if __name__ == "__main__":
    main()
