"""What ``make models`` prints and reuses: champions up to date with silver, and the accuracy table."""

from __future__ import annotations

import hashlib
import json

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from reviewlake import registry, tables
from reviewlake.config import Config

# Figures the seed projects reported on their own data (not re-measured here), for comparison.
SEED_FIGURES = [
    ("seed LSTM", "Amazon polarity 3.6M", "accuracy 0.94"),
    ("seed BERT", "IMDb", "accuracy 0.907"),
    ("seed DistilBERT", "IMDb", "accuracy 0.882"),
    ("seed joint sentiment-topic", "its reviews", "accuracy 0.914"),
]


def train_fingerprint(cfg: Config) -> str:
    """A hash of the training settings: a champion trained with others is not up to date."""
    return hashlib.sha256(json.dumps(cfg.train.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]


def up_to_date(spark: SparkSession, cfg: Config, model_type: str) -> str | None:
    """``NAME vVERSION`` of a registered version trained on the current silver with these (resolved)
    training settings, if there is one."""
    client = registry.configure(cfg)
    name = registry.model_name(cfg, model_type)
    if not spark.catalog.tableExists(cfg.table("silver")):
        return None
    version = tables.table_version(DeltaTable.forName(spark, cfg.table("silver")))
    fingerprint = train_fingerprint(cfg)
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
