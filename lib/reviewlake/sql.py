"""Spark SQL from the command line: split a script into statements and print each result."""

from __future__ import annotations

from pyspark.errors import PySparkException
from pyspark.sql import SparkSession


def split_statements(text: str) -> list[str]:
    """Statements of a SQL script, split on ``;`` outside quotes, with ``--`` comments removed."""
    statements, current, quote = [], [], ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            current.append(ch)
            if ch == quote:
                quote = ""
        elif ch in ("'", '"', "`"):
            quote = ch
            current.append(ch)
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        elif ch == ";":
            statements.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
        i += 1
    statements.append("".join(current).strip())
    return [s for s in statements if s]


def run_statements(spark: SparkSession, statements: list[str], limit: int) -> None:
    """Run each statement and print its result as a table (at most ``limit`` rows)."""
    for statement in statements:
        try:
            df = spark.sql(statement)
        except PySparkException as exc:
            raise ValueError(f"SQL failed: {statement[:200]!r}: {str(exc).splitlines()[0]}") from exc
        if df.columns:
            df.show(limit, truncate=False)
