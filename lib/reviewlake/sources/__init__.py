"""One reader per input format, all producing the same *staged* frame.

A staged frame holds one row per input record, with every bronze field still a string (so a value of
the wrong type can be reported, not silently nulled), plus:

- ``key_parts``: array of strings that identify the review (the natural key, or its content);
- ``raw_record``: the record as read, kept for the quarantine;
- ``parse_error``: why the record could not be parsed, or null;
- ``source_file`` and ``source_line`` (null where the reader cannot know it).

:func:`reviewlake.ingest.validate` then types, checks and splits it into bronze and quarantine rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from reviewlake.config import Config, TimeFormat

STAGED_FIELDS = (
    "product_id", "product_title", "category", "rating", "label", "title", "text",
    "review_time", "verified", "helpful_votes",
)


@dataclass(frozen=True)
class ReadOptions:
    """What a reader needs besides the path."""

    source: str
    category: str | None
    cfg: Config


@dataclass(frozen=True)
class SourceReader:
    """A registered input format."""

    name: str
    read: Callable[[SparkSession, str, ReadOptions], DataFrame]
    time_format: TimeFormat | None
    doc: str


def read_files(spark: SparkSession, path: str, *, whole_file: bool = False) -> DataFrame:
    """Lines (or whole files) of the text files at ``path`` with the file each came from.

    Spark reads plain, gzip and bzip2 files alike; bzip2 is split across tasks.
    """
    df = spark.read.text(path, wholetext=whole_file)
    return df.select(
        F.col("value"),
        F.col("_metadata.file_path").alias("source_file"),
        F.col("_metadata.file_name").alias("file_name"),
    )


def staged(
    df: DataFrame,
    *,
    key_parts: list[Column],
    raw_record: Column,
    parse_error: Column,
    source_line: Column | None = None,
    **fields: Column,
) -> DataFrame:
    """Project ``df`` (which has ``source_file``) onto the staged columns; a field not given is null."""
    unknown = set(fields) - set(STAGED_FIELDS)
    if unknown:
        raise ValueError(f"unknown staged field(s) {sorted(unknown)}")
    columns = [
        F.array(*[p.cast("string") for p in key_parts]).alias("key_parts"),
        raw_record.cast("string").alias("raw_record"),
        parse_error.cast("string").alias("parse_error"),
        F.col("source_file"),
        (source_line if source_line is not None else F.lit(None)).cast("long").alias("source_line"),
    ]
    columns += [fields.get(name, F.lit(None)).cast("string").alias(name) for name in STAGED_FIELDS]
    return df.select(*columns)


def category_from_file(pattern: str, default: str | None) -> Column:
    """Category from a capture group of the input file's name, ``_`` read as a space."""
    if default is not None:
        return F.lit(default)
    found = F.regexp_extract(F.col("file_name"), pattern, 1)
    return F.when(found != "", F.regexp_replace(found, "_", " "))


def registry() -> dict[str, SourceReader]:
    """All formats by name, in the order ``--help`` lists them."""
    from reviewlake.sources import amazon_2023, amazon_json, amazon_tsv, fasttext, imdb, tabular

    readers = [
        fasttext.READER, amazon_json.READER, amazon_2023.READER, amazon_tsv.READER, imdb.READER,
        tabular.CSV_READER, tabular.PARQUET_READER,
    ]
    return {r.name: r for r in readers}
