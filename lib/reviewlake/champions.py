"""What ``make models`` prints and reuses: champions up to date with silver, and the accuracy table."""

from __future__ import annotations


from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from reviewlake import registry, tables
from reviewlake.config import Config
from reviewlake.families import family, train_fingerprint
from reviewlake.topics import format_topic_table

# Figures the seed projects reported on their own data (not re-measured here), for comparison.
SEED_FIGURES = [
    ("seed LSTM", "Amazon polarity 3.6M", "accuracy 0.94"),
    ("seed BERT", "IMDb", "accuracy 0.907"),
    ("seed DistilBERT", "IMDb", "accuracy 0.882"),
    ("seed joint sentiment-topic", "its reviews", "accuracy 0.914"),
]


def up_to_date(spark: SparkSession, cfg: Config, model_type: str) -> str | None:
    """``NAME vVERSION`` of a registered version trained on the current silver with these (resolved)
    training settings, if there is one (a family may decide it its own way: ``Family.up_to_date``)."""
    client = registry.configure(cfg)
    name = registry.model_name(cfg, model_type)
    if not spark.catalog.tableExists(cfg.table("silver")):
        return None
    decide = family(model_type).up_to_date
    if decide is not None:
        return decide(spark, cfg, name)
    version = tables.table_version(DeltaTable.forName(spark, cfg.table("silver")))
    fingerprint = train_fingerprint(cfg, model_type)
    for found in client.search_model_versions(f"name = '{name}'"):
        if found.tags.get("silver_version") == str(version) and found.tags.get("train_config") == fingerprint:
            return f"{name} v{found.version}"
    return None


def accuracy_table(spark: SparkSession, cfg: Config, names: list[str]) -> str:
    """Test-split accuracy and macro-F1 of each champion, per source, beside the seeds' figures."""
    client = registry.configure(cfg)
    lines = [f"{'model':<22} {'source':<18} {'test rows':>9} {'accuracy':>9} {'macro-F1':>9}"]
    have_metrics = spark.catalog.tableExists(cfg.table("model_metrics"))
    for name in names:
        current = registry.champion(client, name, cfg.registry.alias)
        if current is None or not have_metrics:
            lines.append(f"{name:<22} (no champion)")
            continue
        rows = (spark.table(cfg.table("model_metrics"))
                .where((F.col("model") == name) & (F.col("version") == str(current.version))
                       & (F.col("split") == "test") & F.col("metric").isin("accuracy", "f1_macro", "n_sentiment"))
                .groupBy("source").pivot("metric").agg(F.first("value")).orderBy("source").collect())
        for r in rows:
            lines.append(f"{name + ' v' + str(current.version):<22} {r['source']:<18} "
                         f"{int(r['n_sentiment'] or 0):>9} {r['accuracy']:>9.4f} {r['f1_macro']:>9.4f}")
    lines.append("for comparison, as the seed projects reported them on their own data (not measured here):")
    lines += [f"  {who}: {data}, {figure}" for who, data, figure in SEED_FIGURES]
    return "\n".join(lines)


def topic_table_of(spark: SparkSession, cfg: Config, name: str) -> str:
    """:func:`format_topic_table` of the champion of joint-topic model ``name``, from ``tables.model_topics``."""
    current = registry.champion(registry.configure(cfg), name, cfg.registry.alias)
    if current is None or not spark.catalog.tableExists(cfg.table("model_topics")):
        return f"{name}: no champion with topics"
    rows = [r.asDict() for r in spark.table(cfg.table("model_topics")).where(
        (F.col("model") == name) & (F.col("version") == str(current.version))).orderBy("topic_id").collect()]
    return f"topics of {name} v{current.version} (training reviews):\n" + format_topic_table(rows)
