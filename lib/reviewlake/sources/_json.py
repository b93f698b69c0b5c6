"""JSON-lines parsing shared by the Amazon JSON formats: every field read as a string."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

CORRUPT = "_corrupt_record"
# A string field parsed as a string shows an object, array, number or boolean as its JSON text;
# only values that look like one are parsed again to learn their JSON type.
_MAYBE_NOT_STRING = r"^\s*([\[{]|-?[0-9]|true$|false$)"


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


def not_a_string(fields: list[str]) -> Column:
    """Which of ``fields`` (text fields of ``j``) holds a JSON object, array, number or boolean.

    Returns ``"<field> is a JSON <TYPE>, not a string"`` for the first such field, else null.
    """
    error = F.lit(None).cast("string")
    for name in reversed(fields):
        kind = F.schema_of_variant(F.variant_get(F.try_parse_json("value"), f"$.{name}", "variant"))
        error = F.when(
            F.col(f"j.{name}").rlike(_MAYBE_NOT_STRING) & (kind != "STRING"),
            F.format_string(f"{name} is a JSON %s, not a string", F.regexp_extract(kind, r"^([A-Z]+)", 1)),
        ).otherwise(error)
    return error
