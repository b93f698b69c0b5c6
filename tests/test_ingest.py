"""Ingest as a whole: accounting, idempotent re-runs, recovery from a run killed half-way, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.testing import assertDataFrameEqual

from reviewlake import tables
from reviewlake.config import Config
from reviewlake.generate import generate
from reviewlake.ingest import IngestError, ingest

ROWS = 3000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, int]:
    """A generated fastText file with planted malformed lines, and how many were planted."""
    manifest = generate("fasttext", tmp_path_factory.mktemp("corpus"), ROWS, seed=7, malformed_share=0.02)
    assert manifest.malformed_rows > 0
    return manifest.files[0], manifest.malformed_rows


def compilations(spark: SparkSession) -> int:
    """How many generated classes this JVM has compiled so far."""
    metrics = getattr(getattr(spark.sparkContext._jvm.org.apache.spark.metrics.source, "CodegenMetrics$"), "MODULE$")
    return int(metrics.METRIC_COMPILATION_TIME().getCount())


def counts(spark: SparkSession, cfg: Config) -> tuple[int, int]:
    return spark.table(cfg.table("bronze")).count(), spark.table(cfg.table("quarantine")).count()


def test_rows_read_equal_accepted_plus_quarantined(spark: SparkSession, cfg: Config,
                                                   corpus: tuple[str, int]) -> None:
    path, planted = corpus
    report = ingest(spark, cfg, "fasttext", path)
    assert report.rows_read == ROWS
    assert report.rows_quarantined == planted
    assert report.rows_accepted == ROWS - planted
    assert counts(spark, cfg) == (ROWS - planted, planted)
    runs = spark.table(cfg.table("ingest_runs")).select("rows_read", "rows_accepted", "rows_quarantined")
    assertDataFrameEqual(runs, [(ROWS, ROWS - planted, planted)])


def test_rerun_adds_nothing(spark: SparkSession, cfg: Config, corpus: tuple[str, int]) -> None:
    path, planted = corpus
    first = ingest(spark, cfg, "fasttext", path)
    snapshot = spark.table(cfg.table("bronze")).collect()
    compiled = compilations(spark)
    second = ingest(spark, cfg, "fasttext", path)
    assert (second.bronze_rows_inserted, second.quarantine_rows_inserted) == (0, 0)
    # The session keeps the classes it generated: the re-run compiles (almost) nothing again. With
    # Spark's default cache of 100 classes it compiled all ~130 of an ingest each time.
    assert compilations(spark) - compiled < 20
    assert second.rows_read == first.rows_read
    assert counts(spark, cfg) == (ROWS - planted, planted)
    # The rows keep the lineage of the run that first wrote them.
    assertDataFrameEqual(spark.table(cfg.table("bronze")), snapshot)
    assert spark.table(cfg.table("ingest_runs")).count() == 2


def test_skip_unchanged_reads_nothing_until_a_file_changes(spark: SparkSession, cfg: Config, tmp_path: Path,
                                                           corpus: tuple[str, int]) -> None:
    import os
    import shutil

    path = tmp_path / Path(corpus[0]).name
    shutil.copy(corpus[0], path)
    first = ingest(spark, cfg, "fasttext", str(path), skip_unchanged=True)
    assert not first.unchanged and first.rows_read == ROWS
    again = ingest(spark, cfg, "fasttext", str(path), skip_unchanged=True)
    assert again.unchanged and again.rows_read == 0 and again.bronze_version == first.bronze_version
    assert "unchanged since an earlier run" in again.summary()
    assert ingest(spark, cfg, "fasttext", str(path), source="other", skip_unchanged=True).rows_read == ROWS
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # rewritten, same size
    assert ingest(spark, cfg, "fasttext", str(path), skip_unchanged=True).rows_read == ROWS
    runs = spark.table(cfg.table("ingest_runs")).orderBy("started_at").select("unchanged").collect()
    assert [r["unchanged"] for r in runs] == [False, True, False, False]


def test_run_killed_between_tables_is_completed_by_rerun(
    spark: SparkSession, cfg: Config, corpus: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, planted = corpus
    real_insert = tables.insert_new

    def die_on_quarantine(table, rows, key, prune=None):  # type: ignore[no-untyped-def]
        if key == ["quarantine_id"]:
            raise KeyboardInterrupt("killed")
        return real_insert(table, rows, key, prune)

    monkeypatch.setattr(tables, "insert_new", die_on_quarantine)
    with pytest.raises(KeyboardInterrupt):
        ingest(spark, cfg, "fasttext", path)
    assert counts(spark, cfg) == (ROWS - planted, 0)
    monkeypatch.setattr(tables, "insert_new", real_insert)
    # The killed run recorded nothing, so a run that skips unchanged input still reads it.
    report = ingest(spark, cfg, "fasttext", path, skip_unchanged=True)
    assert not report.unchanged
    assert (report.bronze_rows_inserted, report.quarantine_rows_inserted) == (0, planted)
    assert counts(spark, cfg) == (ROWS - planted, planted)


def test_same_file_compressed_or_not_gives_same_ids(spark: SparkSession, cfg: Config, tmp_path: Path,
                                                    corpus: tuple[str, int]) -> None:
    import bz2

    path, _ = corpus
    plain = tmp_path / Path(path).name.removesuffix(".bz2")
    plain.write_bytes(bz2.decompress(Path(path).read_bytes()))
    ingest(spark, cfg, "fasttext", path)
    again = ingest(spark, cfg, "fasttext", str(plain))
    assert again.bronze_rows_inserted == 0


def test_missing_input_is_an_error_and_changes_nothing(spark: SparkSession, cfg: Config,
                                                       tmp_path: Path) -> None:
    missing = tmp_path / "nope.ft.txt"
    with pytest.raises(IngestError, match=f"input path {missing} does not exist"):
        ingest(spark, cfg, "fasttext", str(missing))
    assert not spark.catalog.tableExists(cfg.table("bronze"))


def test_unknown_format_and_bad_source_name(spark: SparkSession, cfg: Config, corpus: tuple[str, int]) -> None:
    with pytest.raises(IngestError, match="unknown format 'xml'"):
        ingest(spark, cfg, "xml", corpus[0])
    with pytest.raises(IngestError, match="source name 'a b'"):
        ingest(spark, cfg, "fasttext", corpus[0], source="a b")


def test_session_conf_holds_for_the_block_only(spark: SparkSession) -> None:
    from reviewlake.spark import session_conf

    unset, kept = "spark.reviewlake.test.unset", "spark.sql.shuffle.partitions"
    before = spark.conf.get(kept)
    with pytest.raises(RuntimeError, match="inside"):
        with session_conf(spark, {unset: "a", kept: "7"}):
            assert (spark.conf.get(unset), spark.conf.get(kept)) == ("a", "7")
            raise RuntimeError("inside")
    assert spark.conf.get(unset, None) is None and spark.conf.get(kept) == before


def test_ingest_plans_its_queries_without_constraint_propagation(spark: SparkSession, cfg: Config,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """ingest.constraint_propagation (off by default: seconds per query on Amazon JSON, benchmarks/ingest.py
    runs both) holds while the ingest plans its queries; the session has its own setting back after."""
    import reviewlake.ingest as ingest_module
    from tests.conftest import FIXTURES

    key = "spark.sql.constraintPropagation.enabled"
    seen = []

    def validate(*args: object, **kwargs: object) -> object:
        seen.append(spark.conf.get(key))
        return real(*args, **kwargs)

    real = ingest_module.validate
    monkeypatch.setattr(ingest_module, "validate", validate)
    assert cfg.ingest.constraint_propagation is False
    spark.conf.set(key, "true")
    try:
        report = ingest(spark, cfg, "amazon-json", str(FIXTURES / "reviews_Musical_Instruments_5.json"))
        assert seen == ["false"] and spark.conf.get(key) == "true"
    finally:
        spark.conf.unset(key)
    assert report.rows_read == report.rows_accepted + report.rows_quarantined > 0
