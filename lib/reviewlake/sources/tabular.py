"""Any other corpus in CSV or Parquet (e.g. the 14M Amazon collection), mapped by config.

``ingest.tabular.<source>`` in conf/ names the source's column for each bronze column and the columns
that identify a review; ``--source`` picks the mapping.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from reviewlake.config import TabularSource
from reviewlake.sources import ReadOptions, SourceReader, staged

CORRUPT = "_corrupt_record"


def mapping(options: ReadOptions) -> TabularSource:
    """The column mapping configured for ``options.source``."""
    found = options.cfg.ingest.tabular.get(options.source)
    if found is None:
        known = ", ".join(sorted(options.cfg.ingest.tabular)) or "none"
        raise ValueError(
            f"no column mapping for source '{options.source}' in ingest.tabular (configured: {known}); "
            "add one to conf/base.yaml"
        )
    return found


def _check_columns(columns: list[str], spec: TabularSource, path: str) -> None:
    wanted = set(spec.key) | set(spec.columns.values())
    missing = sorted(wanted - set(columns))
    if missing:
        raise ValueError(f"{path}: column(s) {missing} named in the mapping are not in the file "
                         f"(it has {columns})")


def _staged(df: DataFrame, spec: TabularSource, parse_error: Column, raw: Column,
            category: str | None) -> DataFrame:
    fields = {target: F.col(f"`{col}`") for target, col in spec.columns.items()}
    if category:
        fields["category"] = F.lit(category)
    return staged(
        df,
        key_parts=[F.col(f"`{k}`") for k in spec.key],
        raw_record=raw,
        parse_error=parse_error,
        **fields,
    )


def read_csv(spark: SparkSession, path: str, options: ReadOptions) -> DataFrame:
    spec = mapping(options)
    header = spark.read.option("header", True).csv(path).columns
    _check_columns(header, spec, path)
    schema = T.StructType([T.StructField(c, T.StringType()) for c in header]
                          + [T.StructField(CORRUPT, T.StringType())])
    df = (
        spark.read.schema(schema)
        .options(header=True, mode="PERMISSIVE", columnNameOfCorruptRecord=CORRUPT, multiLine=False,
                 escape='"')
        .csv(path)
        .withColumn("source_file", F.col("_metadata.file_path"))
    )
    raw = F.coalesce(F.col(CORRUPT), F.to_json(F.struct(*[F.col(f"`{c}`") for c in header])))
    error = F.when(F.col(CORRUPT).isNotNull(), F.lit(f"malformed CSV row (expected {len(header)} fields)"))
    return _staged(df, spec, error, raw, options.category)


def read_parquet(spark: SparkSession, path: str, options: ReadOptions) -> DataFrame:
    spec = mapping(options)
    df = spark.read.parquet(path)
    _check_columns(df.columns, spec, path)
    df = df.withColumn("source_file", F.col("_metadata.file_path"))
    raw = F.to_json(F.struct(*[F.col(f"`{c}`") for c in df.columns if c != "source_file"]))
    return _staged(df, spec, F.lit(None), raw, options.category)


CSV_READER = SourceReader(
    name="csv", read=read_csv, time_format=None,
    doc="CSV with a header, columns mapped by ingest.tabular.<source> in config",
)
PARQUET_READER = SourceReader(
    name="parquet", read=read_parquet, time_format=None,
    doc="Parquet, columns mapped by ingest.tabular.<source> in config",
)
