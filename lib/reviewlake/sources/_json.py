"""JSON-lines parsing shared by the Amazon JSON formats: every field read as a string."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

CORRUPT = "_corrupt_record"


def parse_json_lines(lines: DataFrame, fields: list[str]) -> tuple[DataFrame, Column]:
    """Parse ``value`` of ``lines`` into a ``j`` struct of string ``fields``.

    Numbers, booleans and nested values are kept as their JSON text, so a value of the wrong type is
    reported by validation rather than lost. Returns the frame and its parse-error column.
    """
    schema = T.StructType(
        [T.StructField(f, T.StringType()) for f in fields] + [T.StructField(CORRUPT, T.StringType())]
    )
    parsed = lines.withColumn(
        "j",
        F.from_json("value", schema, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}),
    )
    error = (
        F.when(F.col("j").isNull() | F.col(f"j.{CORRUPT}").isNotNull(), F.lit("not a valid JSON object"))
        .when(~F.trim("value").startswith("{"), F.lit("not a JSON object"))
    )
    return parsed, error
