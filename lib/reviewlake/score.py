"""Batch scoring: silver reviews -> ``tables.scores``, one row per review and model version.

:func:`score_reviews` scores the silver reviews that have no score of the model version yet (or whose
``text_clean`` changed since), or every one of them with ``full``, and MERGEs the scores into
``tables.scores`` keyed by (``review_id``, ``model_name``, ``model_version``). It works in chunks of
``score.chunk_rows`` rows, each one Delta commit: a run killed half-way keeps the chunks it committed,
a re-run scores exactly the rest, and the key leaves one score per review and version whatever happens.

The torch families score in an iterator pandas UDF (``mapInPandas``) on the executors. Each Python
worker loads the registered model (``mlflow.pyfunc``, the same object ``predict`` uses) once and keeps
it across batches and tasks (Spark reuses its Python workers), with its torch threads from config, on
the GPU Spark gave its task if it has one. The predictors tokenize a batch at a time and run under
``torch.inference_mode``. A joint-topic model reuses the embeddings its encoder already has in
``tables.embeddings`` (training stored them) and encodes only the texts without one. A family that
scores natively in Spark (``Family.spark_scores``: the linear MLlib model) does so, with no Python worker.

The text a version scores is silver's raw title and text cleaned by the rules that version was
trained with (its input contract), not by today's config; a version registered before versions
carried their rules scores silver's ``text_clean``.

A review with no text gets the status ``empty_text`` and no score; one longer than ``score.max_chars``
is scored on its first ``max_chars`` characters with the status ``truncated``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from reviewlake import registry, tables
from reviewlake.config import Config
from reviewlake.embeddings import embeddings_for, text_hash
from reviewlake.families import family
from reviewlake.registry import ModelVersion

log = logging.getLogger(__name__)

SCORES_SCHEMA = T.StructType([
    T.StructField("review_id", T.StringType(), False),
    T.StructField("model_name", T.StringType(), False),
    T.StructField("model_version", T.StringType(), False),
    T.StructField("model_type", T.StringType(), False),
    T.StructField("text_hash", T.StringType(), False),
    T.StructField("status", T.StringType(), False),        # ok, truncated, empty_text
    T.StructField("sentiment", T.StringType()),
    T.StructField("sentiment_prob", T.DoubleType()),
    T.StructField("rating_pred", T.DoubleType()),
    T.StructField("aspects", T.ArrayType(T.StringType())),   # those with probability >= 0.5
    T.StructField("aspect_probs", T.MapType(T.StringType(), T.DoubleType())),
    T.StructField("topic_id", T.IntegerType()),
    T.StructField("topic_prob", T.DoubleType()),
    T.StructField("topic_label", T.StringType()),
    T.StructField("silver_version", T.LongType(), False),
    T.StructField("scored_at", T.TimestampType(), False),
])
PARTITION_BY = ["model_name", "model_version"]
KEY = ["review_id", "model_name", "model_version"]

# What the UDF returns per review: the predictor's columns, aspects and their probabilities as text
# (parsed in Spark), the topic id as a double (a missing one is NaN in pandas).
_UDF_SCHEMA = ("review_id string, text_hash string, too_long boolean, status string, sentiment string, "
               "sentiment_prob double, rating_pred double, aspects string, aspect_probs string, "
               "topic_id double, topic_prob double, topic_label string")
_PREDICTED = ["status", "sentiment", "sentiment_prob", "rating_pred", "aspects", "aspect_probs", "topic_id",
              "topic_prob", "topic_label"]
_ARROW_BATCH = "spark.sql.execution.arrow.maxRecordsPerBatch"

def pyfunc_scorer(tracking_uri: str, reference: str, threads: int) -> Any:
    """The ``mapInPandas`` function: batches of ``review_id, text, text_hash, too_long`` in, one row of
    predictions per review out (see ``_UDF_SCHEMA``)."""

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        model = None
        for batch in batches:
            model = model or registry.worker_model(tracking_uri, reference, threads)
            inputs = pd.DataFrame({"text": batch["text"].fillna("")})
            if "embedding" in batch.columns:  # stored embeddings of a joint-topic model's encoder
                inputs["embedding"] = batch["embedding"]
            got = model.predict(inputs).reset_index(drop=True)
            out = got.reindex(columns=_PREDICTED)
            for column in ("sentiment_prob", "rating_pred", "topic_id", "topic_prob"):
                out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
            out["aspects"] = out["aspects"].fillna("")
            out["aspect_probs"] = out["aspect_probs"].fillna("{}")
            yield pd.concat([batch[["review_id", "text_hash", "too_long"]].reset_index(drop=True), out], axis=1)

    return score


def as_scores(predicted: DataFrame, model: ModelVersion, silver_version: int) -> DataFrame:
    """Rows of ``_UDF_SCHEMA`` as rows of :data:`SCORES_SCHEMA`."""
    status = F.when((F.col("status") == "ok") & F.col("too_long"), "truncated").otherwise(F.col("status"))
    aspects = F.when(F.col("aspects") == "", F.array().cast("array<string>")).otherwise(F.split("aspects", ";"))
    return predicted.select(
        "review_id", F.lit(model.name).alias("model_name"), F.lit(model.version).alias("model_version"),
        F.lit(model.model_type).alias("model_type"), "text_hash", status.alias("status"), "sentiment",
        "sentiment_prob", "rating_pred", aspects.alias("aspects"),
        F.from_json("aspect_probs", "map<string,double>").alias("aspect_probs"),
        F.col("topic_id").cast("int").alias("topic_id"), "topic_prob", "topic_label",
        F.lit(silver_version).cast("long").alias("silver_version"),
        # A literal time, not current_timestamp(): the chunk is persisted for its MERGE, and Delta's MERGE
        # did not use the cached rows of a plan holding current_timestamp(): it ran the model a second time.
        F.lit(datetime.now(timezone.utc)).alias("scored_at"))


@contextmanager
def progress(spark: SparkSession, label: str, rows: int, every: float) -> Iterator[None]:
    """Log, every ``every`` seconds while the block runs, how many tasks of the running stages are done,
    the rows that makes (of ``rows``, assuming tasks of equal size) and rows/s."""
    tracker = spark.sparkContext.statusTracker()
    stop = threading.Event()
    start = time.perf_counter()

    def report() -> None:
        while not stop.wait(every):
            stages = [s for s in (tracker.getStageInfo(i) for i in tracker.getActiveStageIds()) if s is not None]
            tasks = sum(s.numTasks for s in stages)
            done = sum(s.numCompletedTasks for s in stages)
            if tasks:
                estimate = rows * done / tasks
                log.info("%s: %d of %d tasks done, about %s of %s rows (%.1f rows/s)", label, done, tasks,
                         f"{estimate:,.0f}", f"{rows:,}", estimate / (time.perf_counter() - start))

    thread = threading.Thread(target=report, name=f"progress {label}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@dataclass(frozen=True)
class ScoreReport:
    model: str
    version: str
    model_type: str
    silver_version: int
    scored: int                   # reviews scored by this run
    already: int                  # silver reviews that had a score of this version (0 with --full)
    chunks: int
    statuses: dict[str, int]      # of the reviews scored by this run
    seconds: float

    def summary(self) -> str:
        rate = self.scored / self.seconds if self.seconds else 0.0
        status = ", ".join(f"{k} {v:,}" for k, v in sorted(self.statuses.items())) or "none"
        return (f"score {self.model}/{self.version} ({self.model_type}) on silver v{self.silver_version}: "
                f"{self.scored:,} reviews scored in {self.chunks} chunk(s), {self.seconds:.1f} s ({rate:,.1f} rows/s); "
                f"{self.already:,} already scored; status: {status}")


def score_reviews(spark: SparkSession, cfg: Config, reference: str, full: bool = False) -> ScoreReport:
    """Score silver with the registered model ``reference`` (``NAME@ALIAS`` or ``NAME/VERSION``) into
    ``tables.scores``; see the module docstring.

    Parameters
    ----------
    full
        Score every silver review again (their scores of this version are replaced), not only the new.
    """
    from reviewlake.preprocess import add_clean_text
    from reviewlake.training.data import silver_at_version

    clock = time.perf_counter()
    model = registry.resolve(cfg, reference)
    kind = family(model.model_type)
    silver, silver_version = silver_at_version(spark, cfg)
    name = cfg.table("scores")
    table = tables.owned_table(spark, name, SCORES_SCHEMA, "scores", PARTITION_BY)
    limit = cfg.score.max_chars
    rules = registry.saved_cleaning(cfg, model.reference)
    texts = (silver.select("review_id", "text_clean") if rules is None
             else add_clean_text(silver.select("review_id", "title", "text"), rules).select("review_id", "text_clean"))
    rows = texts.select("review_id", F.coalesce("text_clean", F.lit("")).alias("text_clean")).select(
        "review_id", F.substring("text_clean", 1, limit).alias("text"), text_hash().alias("text_hash"),
        (F.length("text_clean") > limit).alias("too_long"))
    done = spark.table(name).where((F.col("model_name") == model.name) & (F.col("model_version") == model.version))
    todo = rows if full else rows.join(done.select("review_id", "text_hash"), ["review_id", "text_hash"], "left_anti")
    sc = spark.sparkContext
    sc.setJobDescription(f"score {model.reference}: find the reviews to score")
    total, pending = rows.count(), todo.count()
    chunks = max(1, math.ceil(pending / cfg.score.chunk_rows))
    statuses: dict[str, int] = {}
    previous_batch = spark.conf.get(_ARROW_BATCH, "10000") or "10000"
    spark.conf.set(_ARROW_BATCH, str(cfg.score.batch_rows))
    uri = registry.tracking_uri(cfg)
    embeddings = cfg.table("embeddings")
    # A family that scores in Spark loads once, on the driver; the others load in each Python worker.
    in_spark = registry.load(cfg, model.reference).unwrap_python_model() if kind.spark_scores else None
    scored = 0
    try:
        for chunk in range(chunks if pending else 0):
            label = f"score {model.reference}: chunk {chunk + 1}/{chunks}"
            sc.setJobDescription(label)
            part = todo.where(F.pmod(F.xxhash64("review_id"), F.lit(chunks)) == chunk) if chunks > 1 else todo
            size = math.ceil(pending / chunks)
            if kind.spark_scores is not None:
                predicted = kind.spark_scores(in_spark, part)
            else:
                if kind.uses_embeddings and model.encoder and spark.catalog.tableExists(embeddings):
                    part = part.join(embeddings_for(spark, cfg, model.encoder), ["review_id", "text_hash"], "left")
                # Tasks of score.task_rows rows: the UI and the progress log advance a task at a time.
                tasks = max(sc.defaultParallelism, math.ceil(size / cfg.score.task_rows))
                predicted = part.repartition(tasks).mapInPandas(
                    pyfunc_scorer(uri, model.reference, cfg.score.torch_threads), _UDF_SCHEMA)
            fresh = as_scores(predicted, model, silver_version).persist(StorageLevel.DISK_ONLY)  # MERGE reads it twice
            try:
                with progress(spark, label, size, cfg.score.progress_seconds):
                    counted = fresh.groupBy("status").count().collect()
                for row in counted:
                    statuses[row["status"]] = statuses.get(row["status"], 0) + int(row["count"])
                condition = " AND ".join([f"t.{k} = s.{k}" for k in KEY] + [
                    f"t.model_name = '{model.name}'", f"t.model_version = '{model.version}'"])
                table.alias("t").merge(fresh.alias("s"), condition).whenMatchedUpdateAll().whenNotMatchedInsertAll(
                ).execute()
            finally:
                fresh.unpersist()
            scored = sum(statuses.values())
            seconds = time.perf_counter() - clock
            log.info("score %s: chunk %d/%d committed; %s of %s reviews scored (%.1f rows/s)", model.reference,
                     chunk + 1, chunks, f"{scored:,}", f"{pending:,}", scored / seconds if seconds else 0.0)
    finally:
        spark.conf.set(_ARROW_BATCH, previous_batch)
        sc.setJobDescription(None)  # type: ignore[arg-type]
    report = ScoreReport(model.name, model.version, model.model_type, silver_version, scored,
                         total - pending, chunks if pending else 0, statuses, time.perf_counter() - clock)
    log.info(report.summary())
    return report
