"""Ingest loses nothing silently: ids, bad values, odd files, compression, empty texts, both dump releases.

Each case counts exactly what lands in bronze and in the quarantine.
"""

from __future__ import annotations

import bz2
import gzip
import json
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.testing import assertDataFrameEqual

from reviewlake import tables
from reviewlake.config import Config, ConfigError, load_config
from reviewlake.ingest import IngestError, IngestReport, ingest

FT_2020 = ["__label__2 Great: Works well", "__label__1 Bad: Broke in a day", "__label__2 Fine: Does the job"]
FT_2021 = ["__label__2 Lovely: Soft and warm", "__label__1 Awful: Smells bad", "__label__2 Good: Fits well"]


def write(path: Path, lines: list[str], opener=open) -> Path:  # type: ignore[no-untyped-def]
    path.parent.mkdir(parents=True, exist_ok=True)
    with opener(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


def bronze_count(spark: SparkSession, cfg: Config) -> int:
    return spark.table(cfg.table("bronze")).count()


def quarantine_reasons(spark: SparkSession, cfg: Config) -> list[tuple[int | None, str]]:
    rows = spark.table(cfg.table("quarantine")).select("source_line", "reason").collect()
    return sorted((r[0], r[1]) for r in rows)


def accounted(r: IngestReport) -> tuple[int, int, int, int]:
    """(accepted, inserted, already in bronze, repeated in this input); the last three sum to the first."""
    assert r.rows_read == r.rows_accepted + r.rows_quarantined
    assert r.rows_accepted == r.bronze_rows_inserted + r.bronze_rows_already_present + r.bronze_rows_repeated
    return r.rows_accepted, r.bronze_rows_inserted, r.bronze_rows_already_present, r.bronze_rows_repeated


# 1. Ids: unique per distinct record, the same for the same record read again.

def test_fasttext_files_of_the_same_name_keep_all_their_reviews(spark: SparkSession, cfg: Config,
                                                                tmp_path: Path) -> None:
    a = write(tmp_path / "2020" / "reviews.ft.txt", FT_2020)
    b = write(tmp_path / "2021" / "reviews.ft.txt", FT_2021)
    assert accounted(ingest(spark, cfg, "fasttext", str(a))) == (3, 3, 0, 0)
    assert accounted(ingest(spark, cfg, "fasttext", str(b))) == (3, 3, 0, 0)
    assert bronze_count(spark, cfg) == 6


def test_a_glob_of_same_named_files_inserts_every_review(spark: SparkSession, cfg: Config, tmp_path: Path) -> None:
    write(tmp_path / "2020" / "reviews.ft.txt", FT_2020)
    write(tmp_path / "2021" / "reviews.ft.txt", FT_2021)
    assert accounted(ingest(spark, cfg, "fasttext", str(tmp_path / "*" / "reviews.ft.txt"))) == (6, 6, 0, 0)


def test_the_same_file_moved_or_compressed_is_already_there(spark: SparkSession, cfg: Config,
                                                            tmp_path: Path) -> None:
    lines = [*FT_2020, "__label__2 Great: Works well", "not a fastText line"]  # a repeated line: 2 reviews
    first = ingest(spark, cfg, "fasttext", str(write(tmp_path / "a" / "reviews.ft.txt", lines)))
    assert accounted(first) == (4, 4, 0, 0)
    moved = write(tmp_path / "b" / "c" / "reviews.ft.txt", lines)
    packed = write(tmp_path / "d" / "reviews.ft.txt.bz2", lines, bz2.open)
    gzipped = write(tmp_path / "e" / "reviews.ft.txt.gz", lines, gzip.open)
    for again in (moved, packed, gzipped):
        report = ingest(spark, cfg, "fasttext", str(again))
        assert accounted(report) == (4, 0, 4, 0)
        assert (report.quarantine_rows_inserted, report.quarantine_rows_already_present) == (0, 1)
    assert bronze_count(spark, cfg) == 4
    assert len(quarantine_reasons(spark, cfg)) == 1


@pytest.mark.parametrize("fmt,key_fields", [
    ("amazon-json", ("reviewerID", "asin", "unixReviewTime")),
    ("amazon-2023", ("user_id", "asin", "timestamp")),
])
def test_rows_missing_key_fields_are_not_merged(spark: SparkSession, cfg: Config, tmp_path: Path,
                                                fmt: str, key_fields: tuple[str, ...]) -> None:
    text, rating = ("reviewText", "overall") if fmt == "amazon-json" else ("text", "rating")
    full = dict(zip(key_fields, ["U1", "B1", "1400000000"]))
    rows = [
        {text: "First review, no key at all", rating: 5},
        {text: "Second review, no key at all", rating: 4},
        {key_fields[1]: "B1", text: "Only a product", rating: 3},
        {key_fields[1]: "B1", text: "Only a product, other text", rating: 3},
        {key_fields[0]: "U1", key_fields[1]: "B1", text: "No time", rating: 2},
        {key_fields[0]: "U2", key_fields[1]: "B1", text: "No time either", rating: 2},
        {**full, text: "A complete key", rating: 1},
        {**full, text: "The same key again: the same review re-posted in the dump", rating: 1},
    ]
    path = write(tmp_path / "All_Beauty.jsonl", [json.dumps(r) for r in rows])
    report = ingest(spark, cfg, fmt, str(path))
    assert accounted(report) == (8, 7, 0, 1)
    again = ingest(spark, cfg, fmt, str(write(tmp_path / "moved" / "All_Beauty.jsonl.gz",
                                               [json.dumps(r) for r in rows], gzip.open)))
    assert accounted(again) == (8, 0, 7, 1)
    assert bronze_count(spark, cfg) == 7
    runs = spark.table(cfg.table("ingest_runs")).select("bronze_rows_already_present", "bronze_rows_repeated")
    assertDataFrameEqual(runs, [(0, 1), (7, 1)])


# 2. A time no timestamp can hold is one quarantined row, not a failed run.

@pytest.mark.parametrize("fmt,field", [("amazon-json", "unixReviewTime"), ("amazon-2023", "timestamp")])
def test_out_of_range_times_are_quarantined(spark: SparkSession, cfg: Config, tmp_path: Path,
                                            fmt: str, field: str) -> None:
    text, rating = ("reviewText", "overall") if fmt == "amazon-json" else ("text", "rating")
    times = [2**63 - 1, 99999999999999, -(2**63), 1400000000]
    rows = [{"asin": f"B{i}", text: f"review {i}", rating: 4, field: t} for i, t in enumerate(times)]
    rows.append({"asin": "B9", text: "a rating no int holds", rating: 1e10, field: 1400000000})
    report = ingest(spark, cfg, fmt, str(write(tmp_path / "Books.json", [json.dumps(r) for r in rows])))
    bad = 3 if fmt == "amazon-json" else 2  # 99999999999999 ms is the year 5138: a valid time
    assert (report.rows_accepted, report.rows_quarantined) == (4 - bad, bad + 1)
    reasons = quarantine_reasons(spark, cfg)
    assert [r for _, r in reasons].count("wrong_type") == bad and reasons[-1] == (5, "rating_out_of_range")
    details = [r["detail"] for r in spark.table(cfg.table("quarantine")).where("reason = 'wrong_type'").collect()]
    assert all("in the years 1 to 9999" in d for d in details)


# 3. Inputs that used to read as empty.

def test_a_file_named_bz2_that_is_not_bzip2_is_an_error(spark: SparkSession, cfg: Config, tmp_path: Path) -> None:
    fake = write(tmp_path / "reviews.ft.txt.bz2", FT_2020)
    with pytest.raises(IngestError, match=f"{fake}: named .bz2 but is not bzip2 data"):
        ingest(spark, cfg, "fasttext", str(fake))
    assert not spark.catalog.tableExists(cfg.table("bronze"))


@pytest.mark.parametrize("name", [".reviews.ft.txt", "_reviews.ft.txt", ".hidden.ft.txt.bz2"])
def test_a_hidden_file_named_explicitly_is_read(spark: SparkSession, cfg: Config, tmp_path: Path, name: str) -> None:
    path = write(tmp_path / name, FT_2020, bz2.open if name.endswith(".bz2") else open)
    report = ingest(spark, cfg, "fasttext", str(path))
    assert accounted(report) == (3, 3, 0, 0)
    files = {r[0] for r in spark.table(cfg.table("bronze")).select("source_file").collect()}
    assert files == {str(path)}


def test_folders_are_read_recursively_and_skips_are_reported(spark: SparkSession, cfg: Config,
                                                             tmp_path: Path) -> None:
    write(tmp_path / "in" / "a.ft.txt", FT_2020)
    write(tmp_path / "in" / "deeper" / "still" / "b.ft.txt", FT_2021)
    write(tmp_path / "in" / ".c.ft.txt", ["__label__2 Hidden: in a folder"])
    write(tmp_path / "in" / "_SUCCESS", [""])
    report = ingest(spark, cfg, "fasttext", str(tmp_path / "in"))
    assert accounted(report) == (6, 6, 0, 0)
    assert (report.files_read, report.files_skipped) == (2, 2)


def test_imdb_tree_with_empty_hidden_and_stray_files(spark: SparkSession, cfg: Config, tmp_path: Path) -> None:
    root = tmp_path / "aclImdb"
    write(root / "train" / "pos" / "0_9.txt", ["A wonderful film."])
    write(root / "train" / "neg" / "1_2.txt", ["Dull from start to end."])
    (root / "test" / "pos").mkdir(parents=True)
    (root / "test" / "pos" / "5_8.txt").write_bytes(b"")  # 0 bytes: an empty review
    write(root / "test" / "neg" / ".8_9.txt", ["Hidden, skipped and reported."])
    write(root / "train" / "urls_pos.txt", ["http://www.imdb.com/title/tt0453418/usercomments"])
    report = ingest(spark, cfg, "imdb", str(root))
    assert (report.rows_read, report.rows_accepted, report.rows_quarantined) == (3, 2, 1)
    assert (report.files_read, report.files_skipped) == (3, 2)
    assert quarantine_reasons(spark, cfg) == [(None, "missing_text")]


# 4. Corrupt or truncated compressed files: one error naming the file, nothing written.

@pytest.mark.parametrize("suffix,opener", [(".bz2", bz2.open), (".gz", gzip.open)])
def test_truncated_compressed_file_is_one_error(spark: SparkSession, cfg: Config, tmp_path: Path,
                                                suffix: str, opener) -> None:  # type: ignore[no-untyped-def]
    whole = write(tmp_path / f"whole.ft.txt{suffix}", FT_2020 * 2000, opener)
    cut = tmp_path / f"cut.ft.txt{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(IngestError, match=f"^{cut}: corrupt or truncated compressed data .*nothing was written$"):
        ingest(spark, cfg, "fasttext", str(cut))
    assert not spark.catalog.tableExists(cfg.table("bronze"))


# 5. A config slip cannot replace another stage's table.

def test_table_names_must_be_distinct() -> None:
    with pytest.raises(ConfigError, match="tables.bronze and tables.silver are both 'reviews_bronze'"):
        load_config("local", ["tables.silver=reviews_bronze"])


def test_a_job_never_replaces_a_table_it_does_not_own(spark: SparkSession, cfg: Config, tmp_path: Path) -> None:
    ingest(spark, cfg, "fasttext", str(write(tmp_path / "r.ft.txt", FT_2020)))
    frame = spark.createDataFrame([(1,)], "x int")
    with pytest.raises(ValueError, match="is the bronze, not silver: a job never replaces a table it does not own"):
        tables.overwrite(frame, cfg.table("bronze"), "silver")
    assert bronze_count(spark, cfg) == 3
    tables.overwrite(frame, cfg.table("silver"), "silver")
    tables.overwrite(frame.union(frame), cfg.table("silver"), "silver")  # its own table: replaced
    assert spark.table(cfg.table("silver")).count() == 2


# 6. The quarantine is idempotent across compression.

def test_quarantine_rows_are_not_added_again_from_a_compressed_copy(spark: SparkSession, cfg: Config,
                                                                    tmp_path: Path) -> None:
    rows = ['{"asin": "B1", "reviewText": "ok", "overall": 9}', "{broken", '{"asin": "B2", "overall": 5}']
    ingest(spark, cfg, "amazon-json", str(write(tmp_path / "Books.json", rows)))
    again = ingest(spark, cfg, "amazon-json", str(write(tmp_path / "z" / "Books.json.gz", rows, gzip.open)))
    assert (again.quarantine_rows_inserted, again.quarantine_rows_already_present) == (0, 3)
    assert quarantine_reasons(spark, cfg) == [(1, "rating_out_of_range"), (2, "unparseable"), (3, "missing_text")]


# 7. Texts with nothing in them, and JSON texts that are not strings.

def test_blank_texts_and_non_string_texts_are_quarantined(spark: SparkSession, cfg: Config, tmp_path: Path) -> None:
    texts = ["\t\t", "\n\n", "\u0000", " \u200b\u00a0 ", {"a": 1}, ["x"], 42, 4.5, True, "fine text", "123"]
    rows = [json.dumps({"asin": f"B{i}", "reviewText": t, "overall": 4}) for i, t in enumerate(texts)]
    report = ingest(spark, cfg, "amazon-json", str(write(tmp_path / "Books.json", rows)))
    assert (report.rows_accepted, report.rows_quarantined) == (2, 9)
    assert quarantine_reasons(spark, cfg) == [(1, "missing_text"), (2, "missing_text"), (3, "missing_text"),
                                              (4, "missing_text"), (5, "wrong_type"), (6, "wrong_type"),
                                              (7, "wrong_type"), (8, "wrong_type"), (9, "wrong_type")]
    details = {r["source_line"]: r["detail"] for r in spark.table(cfg.table("quarantine")).collect()}
    assert details[5] == "reviewText is a JSON OBJECT, not a string"
    assert details[7] == "reviewText is a JSON BIGINT, not a string"


def test_fasttext_with_a_tab_only_body(spark: SparkSession, cfg: Config, tmp_path: Path) -> None:
    report = ingest(spark, cfg, "fasttext", str(write(tmp_path / "t.ft.txt", ["__label__2 \t\t", *FT_2020])))
    assert (report.rows_accepted, report.rows_quarantined) == (3, 1)
    assert quarantine_reasons(spark, cfg) == [(1, "missing_text")]


# 8. A source name with a trailing newline.

def test_source_name_with_newline_is_rejected(spark: SparkSession, cfg: Config, tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="source name 'name\\\\n' may hold only"):
        ingest(spark, cfg, "fasttext", str(write(tmp_path / "r.ft.txt", FT_2020)), source="name\n")


# 9. A ':' in a file name is one error naming the file.

def test_colon_in_file_name_is_one_error(spark: SparkSession, cfg: Config, tmp_path: Path) -> None:
    path = write(tmp_path / "reviews 2020:01.ft.txt", FT_2020)
    with pytest.raises(IngestError, match="Hadoop cannot open a file whose name contains ':'; rename the file"):
        ingest(spark, cfg, "fasttext", str(path))


# 10. Both releases of the per-category dumps.

def test_2018_release_fields(spark: SparkSession, cfg: Config, tmp_path: Path) -> None:
    rows = [
        {"overall": 5.0, "verified": True, "reviewTime": "09 1, 2016", "reviewerID": "A1", "asin": "B1",
         "style": {"Format:": " Hardcover"}, "reviewerName": "x", "reviewText": "Loved it", "summary": "Yes",
         "unixReviewTime": 1472688000, "vote": "1,234", "image": ["https://x/y.jpg"]},
        {"overall": 2.0, "verified": False, "reviewerID": "A2", "asin": "B1", "reviewText": "Meh",
         "unixReviewTime": 1472688000},
        {"overall": 4.0, "reviewerID": "A3", "asin": "B1", "reviewText": "2014 release",
         "helpful": [3, 4], "unixReviewTime": 1400000000},
    ]
    ingest(spark, cfg, "amazon-json", str(write(tmp_path / "Books_5.json", [json.dumps(r) for r in rows])))
    got = spark.table(cfg.table("bronze")).select("text", "verified", "helpful_votes")
    assertDataFrameEqual(got, [("Loved it", True, 1234), ("Meh", False, None), ("2014 release", None, 3)])


# 11. CSV records with line breaks in quoted fields; paths stored as given.

def test_csv_multiline_records_and_paths_as_given(spark: SparkSession, cfg: Config, tmp_path: Path) -> None:
    path = tmp_path / "my reviews+2014" / "reviews 14m.csv"
    path.parent.mkdir()
    path.write_text(
        "reviewerID,asin,overall,summary,reviewText,unixReviewTime,helpful_votes,category\n"
        'A1,B1,5,Nice,"Line one\nline two, ""quoted""\nline three",1400000000,1,Books\n'
        "A2,B2,4,Ok,Plain text,1400000000,0,Books\n"
        'A3,B3,3,"Two\nlines",Text,1400000000,0,Books\n'
        'A4,B4,5,TV,Samsung 55" TV is great,1400000000,0,Books\n'
        "A5,B5,2,Meh,After the stray quote,1400000000,0,Books\n"
    )
    report = ingest(spark, cfg, "csv", str(path), source="amazon-14m")
    assert (report.rows_read, report.rows_accepted) == (5, 5)
    got = spark.table(cfg.table("bronze")).select("source_line", "title", "text", "source_file")
    assertDataFrameEqual(got, [
        (2, "Nice", 'Line one\nline two, "quoted"\nline three', str(path)),
        (5, "Ok", "Plain text", str(path)),
        (6, "Two\nlines", "Text", str(path)),
        (8, "TV", 'Samsung 55" TV is great', str(path)),
        (9, "Meh", "After the stray quote", str(path)),
    ])


def test_rebuild_a_source_as_the_readme_says(spark: SparkSession, cfg: Config, tmp_path: Path) -> None:
    from reviewlake.sql import run_statements, split_statements

    path = str(write(tmp_path / "r.ft.txt", [*FT_2020, "junk"]))
    ingest(spark, cfg, "fasttext", path)
    spark.catalog.setCurrentDatabase(cfg.database)
    run_statements(spark, split_statements("DELETE FROM reviews_bronze WHERE source = 'fasttext'; "
                                           "DELETE FROM reviews_quarantine WHERE source = 'fasttext'"), 10)
    assert (bronze_count(spark, cfg), len(quarantine_reasons(spark, cfg))) == (0, 0)
    report = ingest(spark, cfg, "fasttext", path)
    assert (report.bronze_rows_inserted, report.quarantine_rows_inserted) == (3, 1)
    spark.catalog.setCurrentDatabase("default")
