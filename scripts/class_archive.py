"""Dump this environment's class-data-sharing archive for the driver JVM (scripts/bootstrap.sh runs it once).

A job's driver JVM loads about 15,000 classes of Spark, Delta, Hive and Arrow before it does any work.
Java 17 can map them from an archive instead (AppCDS, ``-XX:SharedArchiveFile``): this script starts a
session with ``-XX:ArchiveClassesAtExit``, runs what the jobs run (Delta writes, MERGE, reads, history,
the Hive catalog, Arrow transfers, pandas UDFs, CSV and JSON reads), stops, and the JVM writes the
classes it loaded on exit. :func:`reviewlake.spark.driver_java_options` then passes the archive to every
driver. Usage: ``.venv/bin/python scripts/class_archive.py [--force]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from reviewlake.config import load_config  # noqa: E402
from reviewlake.spark import class_archive, get_spark  # noqa: E402


def workload(work: Path) -> None:
    """What the jobs ask of the driver JVM, on a few rows."""
    from pyspark.sql.functions import pandas_udf

    cfg = load_config("local", [f"paths.warehouse={work / 'warehouse'}", f"paths.metastore={work / 'metastore'}",
                                f"paths.logs={work / 'logs'}", "spark.class_archives=",
                                "spark.conf={spark.ui.enabled: 'false', spark.ui.showConsoleProgress: 'false'}"])
    spark = get_spark(cfg, "reviewlake class archive")
    (work / "in.csv").write_text("id,text\n1,good\n2,bad\n")
    (work / "in.json").write_text('{"id": 1, "text": "good"}\n')
    spark.read.option("header", True).csv(str(work / "in.csv")).collect()
    spark.read.json(str(work / "in.json")).collect()
    frame = spark.range(2000).selectExpr("id", "cast(id % 7 AS string) AS k", "rand(1) AS x", "current_timestamp() AS t")
    frame.write.format("delta").saveAsTable("warm")
    spark.sql("MERGE INTO warm USING (SELECT id, k, x + 1 AS x, t FROM warm WHERE id < 10) s ON warm.id = s.id "
              "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *")
    spark.sql("SELECT k, count(*), avg(x), percentile_approx(x, 0.5) FROM warm GROUP BY k ORDER BY k").collect()
    spark.sql("SELECT id, row_number() OVER (PARTITION BY k ORDER BY x) FROM warm").collect()
    spark.sql("DESCRIBE HISTORY warm").collect()
    spark.sql("DESCRIBE DETAIL warm").collect()

    @pandas_udf("double")  # type: ignore[call-overload]
    def double(x: pd.Series) -> pd.Series:
        return x * 2

    spark.table("warm").select(double("x")).collect()
    spark.table("warm").mapInPandas(lambda batches: (b[["id"]] for b in batches), "id long").collect()
    spark.table("warm").limit(100).toPandas()
    spark.createDataFrame(pd.DataFrame({"a": [1, 2]})).write.format("delta").mode("overwrite").save(str(work / "p"))
    spark.read.format("delta").load(str(work / "p")).count()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--force", action="store_true", help="dump it again even when it exists")
    args = p.parse_args()
    archive = class_archive(load_config("local"))
    if archive is None:
        print("class_archive: spark.class_archives is null or no java found: nothing to do")
        return 0
    if archive.exists() and not args.force:
        print(f"class_archive: {archive} exists")
        return 0
    archive.parent.mkdir(parents=True, exist_ok=True)
    for stale in archive.parent.glob(f".{archive.name}.*"):  # of a dump that was interrupted
        stale.unlink(missing_ok=True)
    partial = archive.with_name(f".{archive.name}.{os.getpid()}")
    # The JVM reads its options from here when PySpark starts it; the archiver's notes (classes it
    # skips: signed jars, old class versions; why it failed) go to a log beside the archive.
    os.environ["SPARK_SUBMIT_OPTS"] = (f"-XX:ArchiveClassesAtExit={partial} -Xlog:cds=off -Xlog:cds+dynamic=off "
                                       f"-Xlog:cds*=warning:file={archive.with_suffix('.log')}")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark import SparkContext

    with tempfile.TemporaryDirectory(prefix="reviewlake-cds-") as work:
        try:
            workload(Path(work))
        except BaseException:
            if SparkContext._gateway is not None:  # killed, it writes no archive of a failed session
                SparkContext._gateway.proc.kill()
            raise
        gateway = SparkContext._gateway
        SparkContext._active_spark_context.stop()  # type: ignore[union-attr]
        # The JVM writes the archive as it exits, which it does when its stdin closes.
        assert gateway is not None and gateway.proc is not None
        gateway.proc.stdin.close()
        try:
            code = gateway.proc.wait(timeout=600)
        except subprocess.TimeoutExpired:
            gateway.proc.kill()
            code = -1
    if code != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        print(f"class_archive: the JVM exited with {code} and wrote no archive", file=sys.stderr)
        return 1
    os.replace(partial, archive)
    print(f"class_archive: {archive} ({archive.stat().st_size / 1e6:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
