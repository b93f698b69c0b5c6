"""fastText lines: ``__label__1 Title: body`` (the 3.6M Amazon polarity set; plain or .bz2).

Label 1 is negative and 2 positive. Title and body split at the first ``": "``; a line without one is
all body. The file has no review ids, so the natural key is empty and a review is identified by its
content (see :func:`reviewlake.ingest.with_ids`): the same file ingested again, compressed or not,
from any folder, gives the same ids, and two files of the same name give different ones.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from reviewlake.sources.base import ReadOptions, SourceReader, read_files, staged

LABELS = {"1": "negative", "2": "positive"}
_LINE = r"^__label__(\S+) (.*)$"


def read(spark: SparkSession, path: str, options: ReadOptions) -> DataFrame:
    lines = read_files(spark, path, options).withColumn("rest", F.regexp_extract("value", _LINE, 2))
    label = F.regexp_extract("value", _LINE, 1)
    rest = F.col("rest")
    colon = F.locate(": ", rest)
    mapped = F.element_at(F.create_map(*[F.lit(x) for kv in LABELS.items() for x in kv]), label)
    parse_error = (
        F.when(~F.col("value").rlike(_LINE), F.lit("line does not start with '__label__<n> '"))
        .when(mapped.isNull(), F.concat(F.lit("unknown label '__label__"), label, F.lit("'")))
    )
    return staged(
        lines,
        key_parts=[],
        raw_record=F.col("value"),
        parse_error=parse_error,
        label=mapped,
        title=F.when(colon > 0, F.substring_index(rest, ": ", 1)),
        text=F.when(colon > 0, F.expr("substring(rest, locate(': ', rest) + 2)")).otherwise(rest),
        category=F.lit(options.category),
    )


READER = SourceReader(
    name="fasttext",
    read=read,
    time_format=None,
    doc="__label__1|2 Title: body lines (Amazon polarity 3.6M); .bz2 read splittably",
)
