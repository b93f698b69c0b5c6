"""Any other corpus in CSV or Parquet (e.g. the 14M Amazon collection), mapped by config.

``ingest.tabular.<source>`` in conf/ names the source's column for each bronze column and the columns
that identify a review; ``--source`` picks the mapping.
"""

from __future__ import annotations

import csv

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import Window
from pyspark.sql import functions as F

from reviewlake.config import TabularSource
from reviewlake.sources.base import ReadOptions, SourceReader, read_files, source_path, staged

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


def join_quoted_lines(lines: DataFrame) -> DataFrame:
    """Join the lines of CSV records whose quoted fields hold line breaks into one ``value``.

    A record goes on while the count of field-opening and field-closing ``"`` since its first line
    is odd (an escaped ``""`` counts twice, so it never changes that). Only files with such a line pay for the ordered pass
    over the file; the record keeps the number of its first line.
    """
    quotes = F.length("value") - F.length(F.replace(F.col("value"), F.lit('"'), F.lit("")))
    # Only a quote that opens a field (at the line's start or after a comma, not closed on the line)
    # or closes one (followed by a comma or the line's end) moves a record across lines; a stray
    # quote inside an unquoted field (Samsung 55" TV) leaves its line a record of its own.
    rest = F.regexp_replace("value", r'"(?:[^"]|"")*"', "")
    structural = rest.rlike(r'(^|,)"') | F.col("value").rlike(r'(^|[^"])"(,|$)')
    lines = lines.withColumn("_odd", ((quotes % 2 == 1) & structural).cast("int"))
    spanning = [r[0] for r in lines.where("_odd = 1").select("source_file").distinct().collect()]
    if not spanning:
        return lines.drop("_odd")
    in_file = Window.partitionBy("source_file").orderBy("source_line")
    open_before = F.coalesce(F.sum("_odd").over(in_file.rowsBetween(Window.unboundedPreceding, -1)), F.lit(0))
    joined = (
        lines.where(F.col("source_file").isin(spanning))
        .withColumn("_start", F.when(open_before % 2 == 0, F.col("source_line")))
        .withColumn("_record", F.max("_start").over(in_file.rowsBetween(Window.unboundedPreceding, 0)))
        .groupBy("source_file", "file_name", "_record")
        .agg(F.sort_array(F.collect_list(F.struct("source_line", "value"))).alias("_lines"))
        .select(F.array_join(F.transform("_lines", lambda x: x["value"]), "\n").alias("value"),
                "source_file", "file_name", F.col("_record").alias("source_line"))
    )
    return lines.where(~F.col("source_file").isin(spanning)).drop("_odd").unionByName(joined)


def read_csv(spark: SparkSession, path: str, options: ReadOptions) -> DataFrame:
    """CSV files with a header line, read line by line so every record keeps its line number."""
    spec = mapping(options)
    lines = read_files(spark, path, options)
    headers = lines.where(F.col("source_line") == 1).select("source_file", "value").collect()
    if not headers:
        raise ValueError(f"{path}: no CSV header line found")
    header = next(csv.reader([headers[0]["value"]]))
    for other in headers[1:]:
        if next(csv.reader([other["value"]])) != header:
            raise ValueError(f"{other['source_file']}: header differs from {headers[0]['source_file']}")
    _check_columns(header, spec, path)
    schema = ", ".join(f"`{c}` string" for c in header) + f", `{CORRUPT}` string"
    parsed = join_quoted_lines(lines.where(F.col("source_line") > 1)).withColumn(
        "c", F.from_csv("value", schema, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT,
                                  "escape": "\""})
    ).select("*", "c.*")
    error = F.when(F.col(CORRUPT).isNotNull(),
                   F.lit(f"malformed CSV row (expected {len(header)} fields)"))
    return _staged(parsed, spec, error, F.col("value"), options.category)


def read_parquet(spark: SparkSession, path: str, options: ReadOptions) -> DataFrame:
    spec = mapping(options)
    df = spark.read.parquet(*[f.read_as for f in options.files.files])
    _check_columns(df.columns, spec, path)
    raw = F.to_json(F.struct(*[F.col(f"`{c}`") for c in df.columns]))
    df = df.select("*", source_path(options.files).alias("source_file"),
                   (F.col("_metadata.row_index") + 1).alias("source_line"))
    return _staged(df, spec, F.lit(None), raw, options.category)


CSV_READER = SourceReader(
    name="csv", read=read_csv, time_format=None,
    doc="CSV with a header, columns mapped by ingest.tabular.<source> in config",
)
PARQUET_READER = SourceReader(
    name="parquet", read=read_parquet, time_format=None,
    doc="Parquet, columns mapped by ingest.tabular.<source> in config",
)
