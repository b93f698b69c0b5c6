"""What every source reader shares: the staged schema, the reader record, reading files with their
line numbers, and the staged projection. ``reviewlake.sources`` re-exports these names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from reviewlake.config import Config, TimeFormat
from reviewlake.sources.files import InputFiles

STAGED_FIELDS = (
    "product_id", "product_title", "category", "rating", "label", "title", "text",
    "review_time", "verified", "helpful_votes",
)


@dataclass(frozen=True)
class ReadOptions:
    """What a reader needs besides the session; ``persisted`` collects frames to unpersist after the run."""

    source: str
    category: str | None
    cfg: Config
    files: InputFiles
    persisted: list[DataFrame] = field(default_factory=list)


@dataclass(frozen=True)
class SourceReader:
    """A registered input format.

    ``member`` is a regular expression a file found inside an input folder must match to be read
    (files named explicitly are always read); ``member_doc`` says what it selects.
    """

    name: str
    read: Callable[[SparkSession, str, ReadOptions], DataFrame]
    time_format: TimeFormat | None
    doc: str
    whole_file: bool = False
    member: str | None = None
    member_doc: str = ""


def source_path(files: InputFiles) -> Column:
    """``source_file`` as the user gave it, from Spark's URL-encoded ``_metadata.file_path``.

    In that URI a space is ``%20`` and a ``+`` is itself, so ``+`` is protected before decoding.
    """
    decoded = F.url_decode(F.replace(F.col("_metadata.file_path"), F.lit("+"), F.lit("%2B")))
    shown = F.regexp_replace(decoded, r"^file:(//)?(?=/)", "")
    for link, original in files.linked.items():
        shown = F.when(shown == link, F.lit(original)).otherwise(shown)
    return shown


def read_files(spark: SparkSession, path: str, options: ReadOptions, *, whole_file: bool = False) -> DataFrame:
    """Lines (or whole files) of the listed input files, with the file and line each came from.

    Spark reads plain, gzip and bzip2 files alike, and splits bzip2 across tasks. Its text source
    does not number lines, so the lines are cached once and numbered exactly: rows of one file split
    are contiguous in one partition, and a file's splits, in order of their byte offsets, hold its
    lines in order; the line number is the count of lines in earlier splits of the file plus the
    row's place in its own split. Whole files get no line number; a 0-byte file, which Spark reads
    as no row at all, is one empty record.
    """
    paths = [f.read_as for f in options.files.files]
    df = spark.read.text(paths, wholetext=whole_file).select(
        F.col("value"),
        source_path(options.files).alias("source_file"),
        F.col("_metadata.file_block_start").alias("_block"),
        F.spark_partition_id().alias("_pid"),
        F.monotonically_increasing_id().alias("_row"),
    ).withColumn("file_name", F.regexp_extract("source_file", r"([^/]*)$", 1))
    if whole_file:
        empty = [(f.path, f.name) for f in options.files.files if f.size == 0]
        files = df.select("value", "source_file", "file_name", F.lit(None).cast("long").alias("source_line"))
        if empty:
            files = files.unionByName(spark.createDataFrame(
                [("", p, n, None) for p, n in empty],
                "value string, source_file string, file_name string, source_line long"))
        return files
    df = df.persist(StorageLevel.MEMORY_AND_DISK)
    options.persisted.append(df)
    splits = (
        df.groupBy("source_file", "_block", "_pid")
        .agg(F.min("_row").alias("_first"), F.count("*").alias("_n"))
        .collect()
    )
    offsets, base, previous_file = [], 0, None
    for split in sorted(splits, key=lambda r: (r["source_file"], r["_block"])):
        if split["source_file"] != previous_file:
            base, previous_file = 0, split["source_file"]
        offsets.append((split["source_file"], split["_block"], split["_pid"], split["_first"], base))
        base += split["_n"]
    offsets_df = spark.createDataFrame(
        offsets, "source_file string, _block long, _pid int, _first long, _base long"
    )
    return df.join(F.broadcast(offsets_df), ["source_file", "_block", "_pid"]).select(
        "value", "source_file", "file_name",
        (F.col("_base") + F.col("_row") - F.col("_first") + 1).alias("source_line"),
    )


def staged(
    df: DataFrame,
    *,
    key_parts: list[Column],
    raw_record: Column,
    parse_error: Column,
    type_error: Column | None = None,
    **fields: Column,
) -> DataFrame:
    """Project ``df`` (which has ``source_file`` and ``source_line``) onto the staged columns.

    A field not given is null.
    """
    unknown = set(fields) - set(STAGED_FIELDS)
    if unknown:
        raise ValueError(f"unknown staged field(s) {sorted(unknown)}")
    columns = [
        F.array(*[p.cast("string") for p in key_parts]).cast("array<string>").alias("key_parts"),
        raw_record.cast("string").alias("raw_record"),
        parse_error.cast("string").alias("parse_error"),
        (F.lit(None) if type_error is None else type_error).cast("string").alias("type_error"),
        F.col("source_file"),
        F.col("source_line"),
    ]
    columns += [fields.get(name, F.lit(None)).cast("string").alias(name) for name in STAGED_FIELDS]
    return df.select(*columns)


def category_from_file(pattern: str, default: str | None) -> Column:
    """Category from a capture group of the input file's name, ``_`` read as a space."""
    if default is not None:
        return F.lit(default)
    found = F.regexp_extract(F.col("file_name"), pattern, 1)
    return F.when(found != "", F.regexp_replace(found, "_", " "))
