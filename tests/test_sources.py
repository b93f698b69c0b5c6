"""Each format, from small files with malformed records, parsed into exact bronze and quarantine rows."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.testing import assertDataFrameEqual

from reviewlake.config import Config
from reviewlake.ingest import ingest
from tests.conftest import FIXTURES, make_config

BRONZE_COLUMNS = ["product_id", "product_title", "category", "rating", "label", "title", "text",
                  "review_time", "verified", "helpful_votes", "source_line"]


def bronze(spark: SparkSession, cfg: Config, source: str) -> DataFrame:
    return spark.table(cfg.table("bronze")).where(f"source = '{source}'").select(*BRONZE_COLUMNS)


def quarantine(spark: SparkSession, cfg: Config, source: str) -> DataFrame:
    return spark.table(cfg.table("quarantine")).where(f"source = '{source}'").select("source_line", "reason")


def test_fasttext(spark: SparkSession, spark_home: Path, cfg: Config) -> None:
    cfg = make_config(spark_home, cfg.database, "ingest.max_text_chars=65")
    report = ingest(spark, cfg, "fasttext", str(FIXTURES / "amazon_polarity.ft.txt"))
    assert (report.rows_read, report.rows_accepted, report.rows_quarantined) == (8, 3, 5)
    none = None
    assertDataFrameEqual(bronze(spark, cfg, "fasttext"), [
        (none, none, none, none, "positive", "Great CD",
         "My lovely Pat has one of the GREAT voices of her generation.", none, none, none, 1),
        (none, none, none, none, "negative", "Batteries died within a year",
         "I bought this charger in Jul 2003 and it worked OK for a while.", none, none, none, 2),
        (none, none, none, none, "positive", none, "works fine, no title separator here",
         none, none, none, 3),
    ])
    assertDataFrameEqual(quarantine(spark, cfg, "fasttext"), [
        (4, "unparseable"), (5, "unparseable"), (6, "missing_text"), (7, "invalid_utf8"),
        (8, "oversize_text"),
    ])
    details = {r["source_line"]: r["detail"] for r in spark.table(cfg.table("quarantine")).collect()}
    assert details[5] == "unknown label '__label__3'"
    assert details[8] == "text has 70 characters, more than max_text_chars=65"


def test_amazon_json(spark: SparkSession, cfg: Config) -> None:
    ingest(spark, cfg, "amazon-json", str(FIXTURES / "reviews_Musical_Instruments_5.json"))
    cat = "Musical Instruments"
    assertDataFrameEqual(bronze(spark, cfg, "amazon-json"), [
        ("1384719342", None, cat, 5, None, "good",
         "Not much to write about here, but it does exactly what it's supposed to.",
         datetime(2014, 2, 28), None, 0, 1),
        ("1384719342", None, cat, 4, None, "Jake",
         "The product does exactly as it should and is quite affordable.",
         datetime(2013, 3, 16), None, 13, 2),
    ])
    assertDataFrameEqual(quarantine(spark, cfg, "amazon-json"), [
        (3, "rating_out_of_range"), (4, "wrong_type"), (5, "missing_text"), (6, "unparseable"),
    ])


def test_amazon_2023(spark: SparkSession, cfg: Config) -> None:
    ingest(spark, cfg, "amazon-2023", str(FIXTURES / "All_Beauty.jsonl"))
    assertDataFrameEqual(bronze(spark, cfg, "amazon-2023"), [
        ("B00YQ6X8EO", None, "All Beauty", 5, None, "Such a lovely scent but not overpowering.",
         "This spray is really nice. It smells really good.", datetime(2020, 5, 5, 14, 8, 48, 923000),
         True, 0, 1),
        ("B081TJ8YS3", None, "All Beauty", 1, None, "Didn't work", "Did nothing for my hair.",
         datetime(2020, 5, 4, 18, 10, 55, 70000), False, 1, 2),
    ])
    assertDataFrameEqual(quarantine(spark, cfg, "amazon-2023"), [(3, "rating_out_of_range"), (4, "wrong_type")])


def test_amazon_tsv(spark: SparkSession, cfg: Config) -> None:
    report = ingest(spark, cfg, "amazon-tsv", str(FIXTURES / "amazon_reviews_us_Books_v1_00.tsv"))
    assert report.rows_read == 4  # the header line is not a record
    assertDataFrameEqual(bronze(spark, cfg, "amazon-tsv"), [
        ("0385730586", "Sisterhood of the Traveling Pants", "Books", 4, None,
         "this book was a great learning novel!", "this boook was a great one that you could learn from.",
         datetime(2005, 10, 14), False, 2, 2),
        ("0811828964", "The Bad Girl's Guide to Getting What You Want", "Books", 3, None, "Fun Fluff",
         "If you are looking for something to stimulate your brain, this is not it.",
         datetime(2005, 10, 14), False, 5, 3),
    ])
    assertDataFrameEqual(quarantine(spark, cfg, "amazon-tsv"), [(4, "unparseable"), (5, "wrong_type")])


def test_imdb(spark: SparkSession, cfg: Config) -> None:
    ingest(spark, cfg, "imdb", str(FIXTURES / "aclImdb"))
    assertDataFrameEqual(bronze(spark, cfg, "imdb"), [
        (None, None, "Movies", 5, "positive", None,
         "Bromwell High is a cartoon comedy.<br /><br />It ran at the same time as some other programs.",
         None, None, None, None),
        (None, None, "Movies", 2, "negative", None, "Story of a man who has unnatural feelings for a pig.",
         None, None, None, None),
        (None, None, "Movies", None, None, None,
         "I admit, the great majority of films released before 1933 were just not for me.",
         None, None, None, None),
    ])
    assertDataFrameEqual(quarantine(spark, cfg, "imdb"), [(None, "missing_text")])


def test_csv_with_column_mapping(spark: SparkSession, cfg: Config) -> None:
    ingest(spark, cfg, "csv", str(FIXTURES / "reviews_14m.csv"), source="amazon-14m")
    assertDataFrameEqual(bronze(spark, cfg, "amazon-14m"), [
        ("B0001", None, "Electronics", 5, None, "Great, really", 'Loved it, "truly" great',
         datetime(2014, 5, 13, 16, 53, 20), None, 3, 2),
        ("B0002", None, "Books", 2, None, "Meh", "Not good at all", datetime(2014, 5, 13, 16, 55), None, 0, 3),
    ])
    assertDataFrameEqual(quarantine(spark, cfg, "amazon-14m"), [(4, "rating_out_of_range"), (5, "unparseable")])


def test_parquet_with_column_mapping(spark: SparkSession, cfg: Config, tmp_path: Path) -> None:
    path = str(tmp_path / "reviews.parquet")
    spark.createDataFrame(
        [("A1", "B1", 5.0, "Top", "Loved it", 1400000000, 3, "Books"),
         ("A2", "B2", 0.0, "Zero", "no stars", 1400000000, 0, "Books")],
        "reviewerID string, asin string, overall double, summary string, reviewText string, "
        "unixReviewTime long, helpful_votes int, category string",
    ).coalesce(1).write.parquet(path)
    ingest(spark, cfg, "parquet", path, source="amazon-14m")
    assertDataFrameEqual(bronze(spark, cfg, "amazon-14m"), [
        ("B1", None, "Books", 5, None, "Top", "Loved it", datetime(2014, 5, 13, 16, 53, 20), None, 3, 1),
    ])
    assertDataFrameEqual(quarantine(spark, cfg, "amazon-14m"), [(2, "rating_out_of_range")])


def test_tabular_needs_a_mapping(spark: SparkSession, cfg: Config) -> None:
    with pytest.raises(ValueError, match="no column mapping for source 'mystery'"):
        ingest(spark, cfg, "csv", str(FIXTURES / "reviews_14m.csv"), source="mystery")
