"""Table schemas and the Delta write helpers every stage uses.

Writes go through Delta MERGE (insert-only on a key) so a re-run inserts nothing it already wrote, and
each MERGE is one atomic commit: a run killed half-way leaves the table as it was.
"""

from __future__ import annotations

import logging

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from reviewlake.spark import session_conf

log = logging.getLogger(__name__)

_MATERIALIZE_SOURCE = "spark.databricks.delta.merge.materializeSource"

BRONZE_SCHEMA = T.StructType(
    [
        T.StructField("review_id", T.StringType(), False),
        T.StructField("source", T.StringType(), False),
        T.StructField("product_id", T.StringType()),
        T.StructField("product_title", T.StringType()),
        T.StructField("category", T.StringType()),
        T.StructField("rating", T.IntegerType()),
        T.StructField("label", T.StringType()),
        T.StructField("title", T.StringType()),
        T.StructField("text", T.StringType(), False),
        T.StructField("review_time", T.TimestampType()),
        T.StructField("verified", T.BooleanType()),
        T.StructField("helpful_votes", T.IntegerType()),
        T.StructField("source_file", T.StringType(), False),
        T.StructField("source_line", T.LongType()),
        T.StructField("ingest_run_id", T.StringType(), False),
        T.StructField("ingested_at", T.TimestampType(), False),
    ]
)

QUARANTINE_SCHEMA = T.StructType(
    [
        T.StructField("quarantine_id", T.StringType(), False),
        T.StructField("source", T.StringType(), False),
        T.StructField("format", T.StringType(), False),
        T.StructField("source_file", T.StringType(), False),
        T.StructField("source_line", T.LongType()),
        T.StructField("raw_record", T.StringType()),
        T.StructField("reason", T.StringType(), False),
        T.StructField("detail", T.StringType()),
        T.StructField("ingest_run_id", T.StringType(), False),
        T.StructField("quarantined_at", T.TimestampType(), False),
    ]
)

INGEST_RUNS_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType(), False),
        T.StructField("source", T.StringType(), False),
        T.StructField("format", T.StringType(), False),
        T.StructField("input", T.StringType(), False),
        T.StructField("started_at", T.TimestampType(), False),
        T.StructField("finished_at", T.TimestampType(), False),
        T.StructField("rows_read", T.LongType(), False),
        T.StructField("rows_accepted", T.LongType(), False),
        T.StructField("rows_quarantined", T.LongType(), False),
        T.StructField("bronze_rows_inserted", T.LongType(), False),
        T.StructField("bronze_rows_already_present", T.LongType()),
        T.StructField("bronze_rows_repeated", T.LongType()),
        T.StructField("quarantine_rows_inserted", T.LongType(), False),
        T.StructField("quarantine_rows_already_present", T.LongType()),
        T.StructField("quarantine_rows_repeated", T.LongType()),
        T.StructField("bronze_version", T.LongType(), False),
        T.StructField("files_read", T.LongType()),
        T.StructField("files_skipped", T.LongType()),
        T.StructField("input_fingerprint", T.StringType()),
        T.StructField("unchanged", T.BooleanType()),
    ]
)

PREPROCESS_RUNS_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType(), False),
        T.StructField("started_at", T.TimestampType(), False),
        T.StructField("finished_at", T.TimestampType(), False),
        T.StructField("bronze_version", T.LongType(), False),
        T.StructField("config_hash", T.StringType(), False),
        T.StructField("rows_in", T.LongType(), False),
        T.StructField("rows_out", T.LongType(), False),
        T.StructField("removed", T.MapType(T.StringType(), T.LongType()), False),
        T.StructField("splits", T.MapType(T.StringType(), T.LongType()), False),
        T.StructField("silver_version", T.LongType(), False),
    ]
)


# The table property naming which of the config's tables (``tables.<role>``) a table is, so that a
# job never replaces a table another stage owns after a slip in the config.
ROLE_PROPERTY = "reviewlake.role"


def ensure_table(
    spark: SparkSession,
    name: str,
    schema: T.StructType,
    partition_by: list[str] | None = None,
    role: str | None = None,
) -> DeltaTable:
    """Create the managed Delta table ``name`` with ``schema`` unless it exists, and return it.

    ``role`` (the key in the config's ``tables``) is recorded on a new table as ``reviewlake.role``.
    """
    builder = DeltaTable.createIfNotExists(spark).tableName(name).addColumns(schema)
    if partition_by:
        builder = builder.partitionedBy(*partition_by)
    if role:
        builder = builder.property(ROLE_PROPERTY, role)
    return builder.execute()


def owned_table(spark: SparkSession, name: str, schema: T.StructType, role: str,
                partition_by: list[str] | None = None) -> DeltaTable:
    """:func:`ensure_table` for a job that writes into the table of ``role``: fails in one line when
    ``name`` is another role's table (two roles given one name in the config)."""
    table = ensure_table(spark, name, schema, partition_by, role=role)
    owner = table_role(spark, name)
    if owner not in (None, role):
        raise ValueError(f"table {name} is the {owner} table, not {role}; give tables.{role} a name of its own "
                         "in the config")
    return table


def table_role(spark: SparkSession, name: str) -> str | None:
    """The ``reviewlake.role`` of table ``name``; None for a table written before roles were kept."""
    properties = DeltaTable.forName(spark, name).detail().select("properties").first()
    return properties[0].get(ROLE_PROPERTY) if properties and properties[0] else None


def overwrite(frame: DataFrame, name: str, role: str, partition_by: list[str] | None = None,
              metadata: str | None = None) -> None:
    """Replace table ``name`` with ``frame`` in one commit, if the table is this ``role``'s or new;
    ``metadata`` is kept as the commit's ``userMetadata`` (in ``DESCRIBE HISTORY``).

    Raises
    ------
    ValueError
        When ``name`` holds another stage's table: its role differs, or it has no role and other
        columns (a table written before roles were kept, of another kind).
    """
    spark = frame.sparkSession
    owner = None
    if spark.catalog.tableExists(name):
        owner = table_role(spark, name)
        legacy_same = owner is None and set(spark.table(name).columns) == set(frame.columns)
        if owner != role and not legacy_same:
            raise ValueError(
                f"table {name} is the {owner or 'table of another stage'}, not {role}: a job never replaces "
                f"a table it does not own; give tables.{role} a name of its own in the config"
            )
    writer = frame.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
    if metadata is not None:
        writer = writer.option("userMetadata", metadata)
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.saveAsTable(name)
    if owner != role:
        spark.sql(f"ALTER TABLE {name} SET TBLPROPERTIES ('{ROLE_PROPERTY}' = '{role}')")


def table_version(table: DeltaTable) -> int:
    """The Delta version of the table's latest commit."""
    row = table.history(1).select("version").first()
    return int(row["version"]) if row else -1


def insert_new(
    table: DeltaTable,
    rows: DataFrame,
    key: list[str],
    prune: dict[str, str] | None = None,
) -> int:
    """Insert the rows of ``rows`` whose ``key`` is not yet in ``table``; return how many went in.

    Rows are de-duplicated on ``key`` first (an insert-only MERGE would otherwise insert a key twice).
    ``prune`` adds literal equalities on partition columns to the match condition so Delta reads only
    the affected partitions.
    """
    if not key:
        raise ValueError("'key' in insert_new cannot be empty")
    conditions = [f"t.`{k}` = s.`{k}`" for k in key]
    conditions += [f"t.`{col}` = '{value}'" for col, value in (prune or {}).items()]
    # An insert-only MERGE reads its source once, so Delta's copy of the source (which guards the
    # two passes of an updating MERGE against a source that changes in between) is pure cost here.
    with session_conf(rows.sparkSession, {_MATERIALIZE_SOURCE: "none"}):
        # execute() returns this MERGE's own metrics; one that inserts nothing may commit nothing,
        # so the table history would show an earlier commit's figures.
        metrics = (
            table.alias("t")
            .merge(rows.dropDuplicates(key).alias("s"), " AND ".join(conditions))
            .whenNotMatchedInsertAll()
            .execute()
            .first()
        )
    return int(metrics["num_inserted_rows"]) if metrics else 0
