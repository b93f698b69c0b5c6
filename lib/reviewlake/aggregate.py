"""Gold tables: topic-by-sentiment and aspect-by-sentiment statistics of the scored reviews.

:func:`aggregate` joins silver to two models' rows of ``tables.scores``: the sentiment model's
(sentiment, predicted rating, predicted aspects; ``multitask@champion`` by default) and the topic
model's (``joint-topic@champion``), and rebuilds:

- ``topic_sentiment``: per topic, reviews, the share of each sentiment, the mean star rating (of the
  reviews that have one) and the mean predicted rating, the topic's top terms and label, and the
  example reviews the topic model is surest of (the joint sentiment-topic seed's table);
- ``topic_sentiment_by_category``, ``topic_sentiment_by_product`` (with the product's title from
  bronze), ``topic_sentiment_monthly`` (per
  month of ``review_time`` and category; reviews without a time are left out of it): the same figures
  per group, with counts beside the shares so that sums over groups stay exact;
- ``aspect_sentiment``: per aspect the review mentions (silver's lexicon ``aspect_labels``), overall
  (``category = 'all'``) and per category, mentions and the share of each sentiment.

Each table is replaced in one Delta commit (a reader sees the old table or the new one) and carries the
model versions (``sentiment_model``, ``topic_model`` as ``NAME/VERSION``) and the Delta versions of the
inputs it was built from (``scores_version``, ``silver_version``). Only scores with the status ``ok`` or
``truncated`` count. Two PNG charts go to ``paths.reports``: sentiment shares per topic and per aspect.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from delta.tables import DeltaTable
import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from reviewlake import tables
from reviewlake.config import Config
from reviewlake.registry import ModelVersion

log = logging.getLogger(__name__)

SENTIMENTS = ("negative", "neutral", "positive")
SCORED = ("ok", "truncated")
ALL_CATEGORIES = "all"
GOLD = ("topic_sentiment", "topic_sentiment_by_category", "topic_sentiment_by_product", "topic_sentiment_monthly",
        "aspect_sentiment")


def _shares() -> list[Column]:
    """Reviews of each sentiment (``negative``, ...; sums over groups stay exact) and their shares."""
    return ([F.sum((F.col("sentiment") == s).cast("long")).alias(s) for s in SENTIMENTS]
            + [F.avg((F.col("sentiment") == s).cast("double")).alias(f"share_{s}") for s in SENTIMENTS])


def scored_reviews(silver: DataFrame, scores: DataFrame, sentiment: ModelVersion, topics: ModelVersion) -> DataFrame:
    """One row per review scored by both models: silver's ``review_id, product_id, category, rating,
    review_time`` (``category`` 'unknown' when it has none) and ``aspects`` (its ``aspect_labels``: the
    lexicon's aspects the text mentions, exact for a silver review, where a model's aspect head only
    approximates them), the sentiment model's ``sentiment, rating_pred`` and the topic model's
    ``topic_id, topic_prob, topic_label``."""

    def of(model: ModelVersion) -> DataFrame:
        return scores.where((F.col("model_name") == model.name) & (F.col("model_version") == model.version)
                            & F.col("status").isin(*SCORED))

    feeling = of(sentiment).select("review_id", "sentiment", "rating_pred")
    topic = of(topics).select("review_id", "topic_id", "topic_prob", "topic_label")
    reviews = silver.select("review_id", "product_id", F.coalesce("category", F.lit("unknown")).alias("category"),
                            "rating", "review_time",
                            F.coalesce("aspect_labels", F.array().cast("array<string>")).alias("aspects"))
    return reviews.join(feeling, "review_id").join(topic.where(F.col("topic_id").isNotNull()), "review_id")


def topic_sentiment(reviews: DataFrame, by: list[str]) -> DataFrame:
    """Per topic (and the ``by`` columns): ``reviews``, how many of each sentiment (``negative``, ``neutral``,
    ``positive``) and their shares (``share_negative``, ...), ``mean_rating`` (of the star ratings, where
    there are) and ``mean_rating_pred``."""
    return reviews.groupBy("topic_id", *by).agg(
        F.first("topic_label", ignorenulls=True).alias("topic_label"), F.count(F.lit(1)).alias("reviews"),
        *_shares(), F.avg("rating").alias("mean_rating"), F.avg("rating_pred").alias("mean_rating_pred"))


def topic_overview(reviews: DataFrame, topic_rows: DataFrame, examples: int) -> DataFrame:
    """:func:`topic_sentiment` per topic, with the topic's ``top_terms`` and ``label`` (from the model's
    row in ``tables.model_topics``) and ``example_review_ids``: the ``examples`` reviews with the highest
    topic probability."""
    rank = Window.partitionBy("topic_id").orderBy(F.desc("topic_prob"), "review_id")
    picked = (reviews.withColumn("_rank", F.row_number().over(rank)).where(F.col("_rank") <= examples)
              .groupBy("topic_id").agg(F.sort_array(F.collect_list(F.struct("_rank", "review_id"))).alias("_ex"))
              .select("topic_id", F.col("_ex.review_id").alias("example_review_ids")))
    terms = topic_rows.select("topic_id", F.col("terms").alias("top_terms"), F.col("label").alias("_label"))
    return (topic_sentiment(reviews, []).join(terms, "topic_id", "left").join(picked, "topic_id", "left")
            .withColumn("topic_label", F.coalesce("_label", "topic_label")).drop("_label")
            .withColumn("example_review_ids", F.coalesce("example_review_ids", F.array().cast("array<string>"))))


def aspect_sentiment(reviews: DataFrame) -> DataFrame:
    """Per aspect mentioned, over all categories (``category`` 'all') and per category: ``mentions`` (reviews
    with that aspect), how many of each sentiment and their shares, and the mean predicted rating."""
    mentions = reviews.select(F.explode("aspects").alias("aspect"), "category", "sentiment", "rating_pred")
    figures = [F.count(F.lit(1)).alias("mentions"), *_shares(), F.avg("rating_pred").alias("mean_rating_pred")]
    overall = mentions.groupBy("aspect").agg(*figures).withColumn("category", F.lit(ALL_CATEGORIES))
    return overall.unionByName(mentions.groupBy("aspect", "category").agg(*figures))


def product_titles(spark: SparkSession, cfg: Config) -> DataFrame:
    """``product_id, product_title`` from bronze (silver keeps no titles); empty when bronze has none."""
    name = cfg.table("bronze")
    if spark.catalog.tableExists(name):
        bronze = spark.table(name)
        if "product_title" in bronze.columns:
            return (bronze.where(F.col("product_id").isNotNull()).groupBy("product_id")
                    .agg(F.max("product_title").alias("product_title")))
    return spark.createDataFrame([], "product_id string, product_title string")


@dataclass(frozen=True)
class AggregateReport:
    sentiment_model: str
    topic_model: str
    scores_version: int
    silver_version: int
    rows: dict[str, int]          # gold table -> rows written
    charts: list[Path]
    seconds: float

    def summary(self) -> str:
        written = ", ".join(f"{name} {n:,}" for name, n in self.rows.items())
        return (f"aggregate of {self.sentiment_model} (sentiment) and {self.topic_model} (topics) over "
                f"review_scores v{self.scores_version} and silver v{self.silver_version} in {self.seconds:.1f} s: "
                f"{written} rows")


def _provenance(frame: DataFrame, sentiment: ModelVersion, topics: ModelVersion | None, scores_version: int,
                silver_version: int) -> DataFrame:
    return frame.select(
        "*", F.lit(sentiment.reference).alias("sentiment_model"),
        F.lit(topics.reference if topics else None).cast("string").alias("topic_model"),
        F.lit(scores_version).cast("long").alias("scores_version"),
        F.lit(silver_version).cast("long").alias("silver_version"), F.current_timestamp().alias("built_at"))


def _inputs_key(sentiment: ModelVersion, topics: ModelVersion, scores_version: int, silver_version: int) -> str:
    """What a gold table is built from, stored as the userMetadata of its commit."""
    return json.dumps({"sentiment_model": sentiment.reference, "topic_model": topics.reference,
                       "scores_version": scores_version, "silver_version": silver_version}, sort_keys=True)


def stale_gold(spark: SparkSession, cfg: Config, sentiment: ModelVersion, topics: ModelVersion) -> list[str]:
    """The gold tables not built from the current versions of scores, silver and the two models (all of them
    when a table is missing): ``pipeline`` rebuilds only when this is not empty."""
    versions = [tables.table_version(DeltaTable.forName(spark, cfg.table(role))) if spark.catalog.tableExists(
        cfg.table(role)) else None for role in ("scores", "silver")]
    if None in versions:
        return list(GOLD)
    key = _inputs_key(sentiment, topics, *versions)  # type: ignore[arg-type]
    stale = []
    for role in GOLD:
        name = cfg.table(role)
        built = (DeltaTable.forName(spark, name).history(10).where(F.col("userMetadata").isNotNull())
                 .orderBy(F.desc("version")).select("userMetadata").first()
                 if spark.catalog.tableExists(name) else None)
        if built is None or built[0] != key:
            stale.append(role)
    return stale


def aggregate(spark: SparkSession, cfg: Config, sentiment: ModelVersion, topics: ModelVersion) -> AggregateReport:
    """Rebuild the gold tables from the scores of ``sentiment`` and ``topics``; see the module docstring."""
    from reviewlake.training.data import silver_at_version

    clock = time.perf_counter()
    name = cfg.table("scores")
    if not spark.catalog.tableExists(name):
        raise ValueError(f"table {name} does not exist: run ./spark-submit.sh score --model ... first")
    scores_version = tables.table_version(DeltaTable.forName(spark, name))
    scores = spark.read.format("delta").option("versionAsOf", scores_version).table(name)
    present = {(r["model_name"], r["model_version"]) for r in scores.select("model_name", "model_version")
               .distinct().collect()}
    for model in dict.fromkeys([sentiment, topics]):
        if (model.name, model.version) not in present:
            raise ValueError(f"{name} has no scores of {model.reference}: run ./spark-submit.sh score --model "
                             f"{model.reference} first")
    silver, silver_version = silver_at_version(spark, cfg)
    sc = spark.sparkContext
    sc.setJobDescription(f"aggregate {sentiment.reference} x {topics.reference}")
    reviews = scored_reviews(silver, scores, sentiment, topics).cache()
    topic_rows = (spark.table(cfg.table("model_topics")).where(
        (F.col("model") == topics.name) & (F.col("version") == topics.version))
        if spark.catalog.tableExists(cfg.table("model_topics")) else None)
    if topic_rows is None or topic_rows.isEmpty():
        log.warning("no topics of %s in %s: labels come from the scores, without top terms", topics.reference,
                    cfg.table("model_topics"))
        topic_rows = spark.createDataFrame([], "topic_id int, terms array<string>, label string")
    month = F.to_date(F.date_trunc("month", "review_time")).alias("month")
    frames = {  # in the order of GOLD
        "topic_sentiment": topic_overview(reviews, topic_rows, cfg.aggregate.examples),
        "topic_sentiment_by_category": topic_sentiment(reviews, ["category"]),
        "topic_sentiment_by_product": topic_sentiment(reviews.where(F.col("product_id").isNotNull()),
                                                      ["product_id"]).join(product_titles(spark, cfg), "product_id",
                                                                           "left"),
        "topic_sentiment_monthly": topic_sentiment(reviews.where(F.col("review_time").isNotNull())
                                                   .withColumn("month", month), ["month", "category"]),
        "aspect_sentiment": aspect_sentiment(reviews),
    }
    built_from = _inputs_key(sentiment, topics, scores_version, silver_version)

    def rebuild(role: str) -> int:
        sc.setJobDescription(f"aggregate: rebuild {cfg.table(role)}")  # this thread's jobs
        tables.overwrite(_provenance(frames[role], sentiment, None if role == "aspect_sentiment" else topics,
                                     scores_version, silver_version), cfg.table(role), role, metadata=built_from)
        return int(spark.table(cfg.table(role)).count())

    try:
        # The five tables are independent: their jobs run side by side (Spark schedules jobs from several
        # threads at once; small gold tables are mostly per-job latency). The cached reviews are computed
        # once: a second task asking for a block waits for the one computing it.
        with ThreadPoolExecutor(max_workers=len(GOLD)) as pool:
            rows = dict(zip(GOLD, pool.map(rebuild, GOLD)))
    finally:
        reviews.unpersist()
        sc.setJobDescription(None)  # type: ignore[arg-type]
    charts = write_charts(spark, cfg)
    report = AggregateReport(sentiment.reference, topics.reference, scores_version, silver_version, rows, charts,
                             time.perf_counter() - clock)
    log.info(report.summary())
    return report


def topic_table(spark: SparkSession, cfg: Config) -> str:
    """``topic_sentiment`` as a text table (the seed's: share negative / positive per topic, and the mean
    predicted rating), most negative first."""
    rows = spark.table(cfg.table("topic_sentiment")).orderBy(F.desc("share_negative"), "topic_id").collect()
    shown = [s for s in SENTIMENTS if s != "neutral" or any(r["neutral"] for r in rows)]  # a 2-class model has none
    lines = [f"{'topic':>5}  {'reviews':>8}  " + "".join(f"{s:>9} " for s in shown) + f"{'rating':>6}  label"]
    for r in rows:
        rating = "" if r["mean_rating_pred"] is None else f"{r['mean_rating_pred']:.2f}"
        lines.append(f"{r['topic_id']:>5}  {r['reviews']:>8,}  " + "".join(f"{r['share_' + s]:>9.1%} " for s in shown)
                     + f"{rating:>6}  {r['topic_label']}")
    return "\n".join(lines)


COLOURS = {"negative": "#c0392b", "neutral": "#95a5a6", "positive": "#27ae60"}


def stacked_shares(ax: Any, frame: pd.DataFrame, labels: list[str], title: str) -> None:
    """Horizontal bars of ``frame``'s ``share_negative`` / ``share_neutral`` / ``share_positive``, one per label."""
    left = [0.0] * len(frame)
    for s in SENTIMENTS:
        values = frame[f"share_{s}"].fillna(0.0).tolist()
        ax.barh(labels, values, left=left, color=COLOURS[s], label=s)
        left = [a + b for a, b in zip(left, values)]
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of reviews")
    ax.set_title(title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=3, fontsize=8, frameon=False)


def write_charts(spark: SparkSession, cfg: Config) -> list[Path]:
    """Stacked bars of the sentiment shares per topic and per aspect (all categories), as PNGs in
    ``paths.reports``."""
    from matplotlib.figure import Figure

    out = []
    topics: pd.DataFrame = spark.table(cfg.table("topic_sentiment")).orderBy("share_negative").toPandas()
    aspects: pd.DataFrame = spark.table(cfg.table("aspect_sentiment")).where(F.col("category") == ALL_CATEGORIES).orderBy(
        "share_negative").toPandas()
    cfg.paths.reports.mkdir(parents=True, exist_ok=True)
    for frame, labels, title, file in (
            (topics, [f"{t}: {label} ({n:,})" for t, label, n in zip(topics["topic_id"], topics["topic_label"],
                                                                     topics["reviews"])],
             "Sentiment share per topic (reviews)", "topic_sentiment.png"),
            (aspects, [f"{a} ({n:,})" for a, n in zip(aspects["aspect"], aspects["mentions"])],
             "Sentiment share per aspect (mentions)", "aspect_sentiment.png")):
        fig = Figure(figsize=(9, 0.45 * max(len(frame), 3) + 1.6))
        ax = fig.subplots()
        stacked_shares(ax, frame, labels, f"{title}: {frame['sentiment_model'].iloc[0] if len(frame) else 'no scores'}")
        fig.tight_layout()
        path = cfg.paths.reports / file
        fig.savefig(path, dpi=110)
        out.append(path)
    return out
