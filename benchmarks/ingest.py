"""Ingest benchmark: Spark into Delta vs a single-process pandas parser, on the same generated file.

    .venv/bin/python benchmarks/ingest.py                 # 1M fastText lines (bz2, as the original)
    .venv/bin/python benchmarks/ingest.py --rows 3600000  # the full Amazon polarity train size

Both sides read the same .bz2 file, split label / title / text, drop malformed lines and write the
result (pandas: one Parquet file; Spark: the reviewlake ingest, i.e. validation, quarantine and a
Delta MERGE). Prints rows/s of each and their ratio, measured in this run.

Then the ingest's fixed cost with and without Spark's constraint propagation (``ingest.constraint_propagation``):
a small Amazon JSON file (``--small-rows``) ingested into a new database, ``--rounds`` times each in
alternating order; prints the median seconds of each and their ratio (``--rounds 0``: not measured).
"""

from __future__ import annotations

import argparse
import bz2
import statistics
import sys
import time
import uuid
from pathlib import Path

import pandas as pd
from _common import setup
from pyspark.sql import SparkSession

from reviewlake.config import Config
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


def options() -> argparse.Namespace:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--small-rows", type=int, default=200)
    p.add_argument("--rounds", type=int, default=3)
    known, rest = p.parse_known_args()
    sys.argv = [sys.argv[0], *rest]  # --rows and --workdir are the common options
    return known


def propagation_seconds(spark: SparkSession, cfg: Config, path: Path, rounds: int) -> dict[bool, float]:
    """Median seconds of an ingest of ``path`` into a new database, with and without constraint propagation."""
    seconds: dict[bool, list[float]] = {True: [], False: []}
    for i in range(rounds):
        for on in ((False, True) if i % 2 == 0 else (True, False)):
            run_cfg = cfg.model_copy(update={"database": f"propagation_{uuid.uuid4().hex[:8]}",
                                             "ingest": cfg.ingest.model_copy(update={"constraint_propagation": on})})
            spark.sql(f"CREATE DATABASE {run_cfg.database}")
            t = time.perf_counter()
            ingest(spark, run_cfg, "amazon-json", str(path))
            seconds[on].append(time.perf_counter() - t)
    return {on: statistics.median(s) for on, s in seconds.items()}


def main() -> None:
    opts = options()
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

    if opts.rounds < 1:
        print("constraint propagation on/off: not measured (--rounds 0)")
    else:
        small = generate("amazon-json", work / "small", opts.small_rows, malformed_share=0.0).files[0]
        median = propagation_seconds(spark, cfg, Path(small), opts.rounds)
        print(f"ingest of {opts.small_rows:,} Amazon JSON rows into a new database: constraint propagation on "
              f"{median[True]:.1f}s, off {median[False]:.1f}s (median of {opts.rounds})")
        print(f"ratio ingest seconds on/off constraint propagation: {median[True] / median[False]:.2f}")
    spark.stop()


if __name__ == "__main__":
    main()
