"""Ingest benchmark: Spark into Delta vs a single-process pandas parser, on the same generated file.

    .venv/bin/python benchmarks/ingest.py                 # 1M fastText lines (bz2, as the original)
    .venv/bin/python benchmarks/ingest.py --rows 3600000  # the full Amazon polarity train size

Both sides read the same .bz2 file, split label / title / text, drop malformed lines and write the
result (pandas: one Parquet file; Spark: the reviewlake ingest, i.e. validation, quarantine and a
Delta MERGE). Prints rows/s of each and their ratio, measured in this run.
"""

from __future__ import annotations

import bz2
import time
from pathlib import Path

import pandas as pd
from _common import setup

from reviewlake.generate import generate
from reviewlake.ingest import ingest
from reviewlake.spark import get_spark


def pandas_ingest(path: Path, out: Path) -> int:
    """The single-process baseline: decompress, parse with vectorised pandas string ops, write Parquet."""
    with bz2.open(path, "rt", encoding="utf-8", errors="replace") as f:
        lines = pd.Series(f.read().splitlines())
    parts = lines.str.extract(r"^__label__([12]) (.*)$")
    ok = parts[0].notna() & (parts[1].str.strip() != "") & ~lines.str.contains("\ufffd", regex=False)
    parts = parts[ok]
    split = parts[1].str.split(": ", n=1, expand=True)
    has_title = split[1].notna()
    frame = pd.DataFrame({
        "label": parts[0].map({"1": "negative", "2": "positive"}),
        "title": split[0].where(has_title),
        "text": split[1].where(has_title, split[0]),
    })
    frame.to_parquet(out)
    return len(lines)


def main() -> None:
    run = setup(__doc__)
    work, cores, cfg = run.work, run.cores, run.cfg

    t = time.perf_counter()
    manifest = generate("fasttext", work / "corpus", run.rows, workers=cores)
    path = Path(manifest.files[0])
    print(f"generated {run.rows:,} lines ({path.stat().st_size / 1e6:.0f} MB bz2) in {time.perf_counter() - t:.1f}s")

    t = time.perf_counter()
    n = pandas_ingest(path, work / "pandas.parquet")
    pandas_s = time.perf_counter() - t
    print(f"pandas, 1 process:        {n:,} rows in {pandas_s:.1f}s = {n / pandas_s:,.0f} rows/s")

    spark = get_spark(cfg, "reviewlake benchmark ingest")
    t = time.perf_counter()
    report = ingest(spark, cfg, "fasttext", str(path))
    spark_s = time.perf_counter() - t
    print(f"spark ingest, {cores} cores:  {report.rows_read:,} rows in {spark_s:.1f}s = "
          f"{report.rows_read / spark_s:,.0f} rows/s ({report.rows_read / spark_s / cores:,.0f} rows/s per core; "
          f"{report.rows_quarantined:,} quarantined)")
    print(f"ratio spark/pandas rows/s: {pandas_s / spark_s:.4f}")  # a smoke run's is in the thousandths
    spark.stop()


if __name__ == "__main__":
    main()
