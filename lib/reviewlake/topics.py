"""Readable topics: top terms per topic by class-based TF-IDF (in Spark), labels, examples, and quality.

Given reviews assigned to topics, :func:`describe_topics` counts the terms of each topic's reviews
in Spark and ranks them by class-based TF-IDF (BERTopic's c-TF-IDF: a term's frequency in the topic
times ``log(1 + A / f)``, ``A`` the average number of words per topic and ``f`` the term's frequency
over all topics), so a topic's terms are the ones that set it apart. The label is its top three
terms. :func:`npmi` is the coherence of a topic's top terms (normalised pointwise mutual information
of document co-occurrence, -1..1) and :func:`diversity` the share of distinct terms over all topics'
top terms. :func:`write_topics` stores the topics of a model version in ``tables.model_topics``.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
from pyspark.ml.feature import RegexTokenizer, StopWordsRemover
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from reviewlake import tables
from reviewlake.config import Config

log = logging.getLogger(__name__)

MODEL_TOPICS_SCHEMA = T.StructType([
    T.StructField("model", T.StringType(), False),
    T.StructField("version", T.StringType(), False),
    T.StructField("topic_id", T.IntegerType(), False),
    T.StructField("label", T.StringType(), False),
    T.StructField("terms", T.ArrayType(T.StringType(), False), False),
    T.StructField("weights", T.ArrayType(T.DoubleType(), False), False),
    T.StructField("examples", T.ArrayType(T.StringType(), False), False),
    T.StructField("reviews", T.LongType(), False),
    T.StructField("share_negative", T.DoubleType()),
    T.StructField("share_neutral", T.DoubleType()),
    T.StructField("share_positive", T.DoubleType()),
    T.StructField("npmi", T.DoubleType()),
    T.StructField("created_at", T.TimestampType(), False),
])


@dataclass(frozen=True)
class Topic:
    topic_id: int
    label: str
    terms: list[str]
    weights: list[float]
    examples: list[str]
    reviews: int
    shares: dict[str, float]     # sentiment -> share of the topic's labelled reviews
    npmi: float | None = None


def tokens(frame: DataFrame, column: str = "text_clean") -> DataFrame:
    """``frame`` with ``terms``: lower-case words of 3+ letters, English stop words removed."""
    words = RegexTokenizer(inputCol=column, outputCol="_words", pattern="[^a-z]+", minTokenLength=3,
                           toLowercase=True).transform(frame.fillna({column: ""}))
    stop = StopWordsRemover.loadDefaultStopWords("english") + ["br", "film", "movie", "one", "also", "would"]
    return StopWordsRemover(inputCol="_words", outputCol="terms", stopWords=stop).transform(words).drop("_words")


def describe_topics(assigned: DataFrame, top_terms: int, examples: int, class_names: Sequence[str]) -> list[Topic]:
    """Topics of ``assigned`` (``review_id, topic, topic_prob, text_clean, sentiment``, the last -1 for
    no label): c-TF-IDF top terms, label, the most typical review ids, sentiment shares."""
    docs = tokens(assigned).cache()
    counts = docs.select("topic", F.explode("terms").alias("term")).groupBy("topic", "term").count()
    per_topic = counts.groupBy("topic").agg(F.sum("count").alias("words"))
    per_term = counts.groupBy("term").agg(F.sum("count").alias("total"))
    average = per_topic.agg(F.avg("words")).first()
    a = float(average[0]) if average and average[0] else 1.0
    scored = (counts.join(per_topic, "topic").join(per_term, "term")
              .withColumn("weight", F.col("count") / F.col("words") * F.log(1 + F.lit(a) / F.col("total")))
              .withColumn("rank", F.row_number().over(Window.partitionBy("topic").orderBy(F.desc("weight"), "term")))
              .where(F.col("rank") <= top_terms))
    terms: dict[int, list[tuple[str, float]]] = {}
    for r in scored.orderBy("topic", "rank").collect():
        terms.setdefault(int(r["topic"]), []).append((r["term"], float(r["weight"])))
    typical: dict[int, list[str]] = {}
    ranked = assigned.withColumn("rank", F.row_number().over(
        Window.partitionBy("topic").orderBy(F.desc("topic_prob"), "review_id"))).where(F.col("rank") <= examples)
    for r in ranked.orderBy("topic", "rank").collect():
        typical.setdefault(int(r["topic"]), []).append(r["review_id"])
    sizes: dict[int, int] = {}
    labelled: dict[int, dict[int, int]] = {}
    for r in assigned.groupBy("topic", "sentiment").count().collect():
        sizes[int(r["topic"])] = sizes.get(int(r["topic"]), 0) + int(r["count"])
        if r["sentiment"] is not None and r["sentiment"] >= 0:
            labelled.setdefault(int(r["topic"]), {})[int(r["sentiment"])] = int(r["count"])
    docs.unpersist()
    out = []
    for topic in sorted(sizes):
        found = terms.get(topic, [])
        by_class = labelled.get(topic, {})
        total = sum(by_class.values())
        shares = {name: by_class.get(i, 0) / total for i, name in enumerate(class_names)} if total else {}
        out.append(Topic(topic, " / ".join(t for t, _ in found[:3]) or f"topic {topic}", [t for t, _ in found],
                         [w for _, w in found], typical.get(topic, []), sizes[topic], shares))
    return out


def npmi(documents: Iterable[set[str]], term_lists: Sequence[Sequence[str]]) -> list[float | None]:
    """Mean NPMI over the pairs of each list's terms, from which documents hold them (-1 for a pair
    never seen together; None for a list of fewer than two terms or no documents)."""
    vocab = sorted({t for terms in term_lists for t in terms})
    index = {t: i for i, t in enumerate(vocab)}
    rows = [[index[t] for t in doc if t in index] for doc in documents]
    if not rows or not vocab:
        return [None for _ in term_lists]
    present = np.zeros((len(rows), len(vocab)), dtype=bool)
    for i, row in enumerate(rows):
        present[i, row] = True
    n = len(rows)
    single = present.sum(0) / n
    out: list[float | None] = []
    for terms in term_lists:
        pairs = list(itertools.combinations([index[t] for t in terms], 2))
        if not pairs:
            out.append(None)
            continue
        values = []
        for i, j in pairs:
            joint = float(np.logical_and(present[:, i], present[:, j]).sum()) / n
            if joint == 0:
                values.append(-1.0)
            elif joint == 1.0:
                values.append(1.0)
            else:
                values.append(float(np.log(joint / (single[i] * single[j])) / -np.log(joint)))
        out.append(float(np.mean(values)))
    return out


def diversity(term_lists: Sequence[Sequence[str]]) -> float:
    """Distinct terms over all top terms (1.0: no two topics share a term)."""
    total = sum(len(t) for t in term_lists)
    return len({t for terms in term_lists for t in terms}) / total if total else 0.0


def topic_documents(assigned: DataFrame, term_lists: Sequence[Sequence[str]]) -> list[tuple[str, set[str]]]:
    """``(source, the top terms it holds)`` for each review of ``assigned`` (for :func:`npmi`)."""
    vocab = sorted({t for terms in term_lists for t in terms})
    rows = tokens(assigned).select("source", F.array_intersect("terms", F.array(*[F.lit(t) for t in vocab]))
                                   .alias("terms")).collect() if vocab else []
    return [(r["source"], set(r["terms"])) for r in rows]


def write_topics(spark: SparkSession, cfg: Config, model: str, version: str, topics: list[Topic]) -> None:
    """Replace the topics of ``model`` ``version`` in ``tables.model_topics`` (one MERGE: a reader sees the
    old topics or the new, never a mix)."""
    name = cfg.table("model_topics")
    table = tables.owned_table(spark, name, MODEL_TOPICS_SCHEMA, "model_topics")
    rows = [(model, version, t.topic_id, t.label, t.terms, t.weights, t.examples, t.reviews,
             t.shares.get("negative"), t.shares.get("neutral"), t.shares.get("positive"), t.npmi) for t in topics]
    frame = spark.createDataFrame(rows, T.StructType(MODEL_TOPICS_SCHEMA.fields[:-1])).withColumn(
        "created_at", F.current_timestamp())
    this_version = (F.col("t.model") == model) & (F.col("t.version") == version)
    (table.alias("t").merge(frame.alias("s"), "t.model = s.model AND t.version = s.version AND t.topic_id = s.topic_id")
     .whenMatchedUpdateAll().whenNotMatchedInsertAll().whenNotMatchedBySourceDelete(this_version).execute())
    log.info("%s: %d topics of %s v%s", name, len(topics), model, version)


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
