"""What ``make models`` prints and reuses: champions up to date with silver, and the accuracy table."""

from __future__ import annotations

import hashlib
import json
from typing import Any

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


# Settings sections of the model families added after linear and multitask: each is part of its own
# family's fingerprint only (the first two hash every other setting, as they always have).
FAMILY_SECTIONS = {"joint-topic": "joint_topic", "bilstm": "bilstm", "multitask-bitlinear": "bitlinear"}


def train_fingerprint(cfg: Config, model_type: str) -> str:
    """A hash of the training settings ``model_type`` depends on: a version trained with others is not
    up to date."""
    others = {section for family, section in FAMILY_SECTIONS.items() if family != model_type}
    settings = cfg.train.model_dump(mode="json", exclude=others)
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def up_to_date(spark: SparkSession, cfg: Config, model_type: str) -> str | None:
    """``NAME vVERSION`` of a registered version trained on the current silver with these (resolved)
    training settings, if there is one."""
    client = registry.configure(cfg)
    name = registry.model_name(cfg, model_type)
    if not spark.catalog.tableExists(cfg.table("silver")):
        return None
    if model_type == "multitask-int8":  # up to date when it quantized the current multitask champion
        from reviewlake.models.quantize import METHOD

        source = registry.champion(client, registry.model_name(cfg, "multitask"), cfg.registry.alias)
        wanted = f"{source.name}/{source.version}" if source is not None else None
        return next((f"{name} v{v.version}" for v in client.search_model_versions(f"name = '{name}'")
                     if wanted and v.tags.get("source_model") == wanted and v.tags.get("quantization") == METHOD),
                    None)
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


def format_topic_table(rows: list[dict[str, Any]], topic_diversity: float | None = None) -> str:
    """The joint sentiment-topic seed's table: per topic, reviews, share negative / positive of its
    labelled reviews, NPMI coherence of its terms, and its label."""
    def share(value: float | None) -> str:
        return f"{value:>8.1%}" if value is not None else f"{'-':>8}"

    lines = [f"{'topic':>5}  {'reviews':>8}  {'negative':>8}  {'positive':>8}  {'npmi':>6}  label"]
    for r in rows:
        npmi = f"{r['npmi']:6.3f}" if r.get("npmi") is not None else f"{'-':>6}"
        lines.append(f"{r['topic_id']:>5}  {r['reviews']:>8,}  {share(r.get('share_negative'))}  "
                     f"{share(r.get('share_positive'))}  {npmi}  {r['label']}")
    if topic_diversity is not None:
        lines.append(f"topic diversity {topic_diversity:.2f} (share of distinct terms among the topics' top terms)")
    return "\n".join(lines)


def topic_table_of(spark: SparkSession, cfg: Config, name: str) -> str:
    """:func:`format_topic_table` of the champion of joint-topic model ``name``, from ``tables.model_topics``."""
    current = registry.champion(registry.configure(cfg), name, cfg.registry.alias)
    if current is None or not spark.catalog.tableExists(cfg.table("model_topics")):
        return f"{name}: no champion with topics"
    rows = [r.asDict() for r in spark.table(cfg.table("model_topics")).where(
        (F.col("model") == name) & (F.col("version") == str(current.version))).orderBy("topic_id").collect()]
    return f"topics of {name} v{current.version} (training reviews):\n" + format_topic_table(rows)
