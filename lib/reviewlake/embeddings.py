"""Encoder embeddings of silver's reviews, computed once per review text and encoder, kept in Delta.

:func:`embed_silver` embeds the silver rows that have no embedding yet for the encoder (or whose
``text_clean`` changed since) with an iterator pandas UDF on the executors, which loads the encoder
once per task, and MERGEs them into ``tables.embeddings`` keyed by (``review_id``, ``encoder``).
Retraining the joint sentiment-topic model, other topic counts and batch scoring read them from
there. :func:`sentence_embeddings` is the one definition of an embedding (mean pooling over the
tokens, L2-normalised, as the sentence-transformers models were trained), used by the UDF and by
the predictor alike.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator

import numpy as np
import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from reviewlake import tables
from reviewlake.config import Config

log = logging.getLogger(__name__)

EMBEDDINGS_SCHEMA = T.StructType([
    T.StructField("review_id", T.StringType(), False),
    T.StructField("encoder", T.StringType(), False),
    T.StructField("text_hash", T.StringType(), False),
    T.StructField("embedding", T.ArrayType(T.FloatType()), False),
    T.StructField("embedded_at", T.TimestampType(), False),
])


def sentence_embeddings(encoder: Any, tokenizer: Any, texts: list[str], max_length: int, batch_size: int = 64,
                        device: str = "cpu") -> np.ndarray:
    """``(len(texts), hidden)`` float32: the encoder's states mean-pooled over the tokens, L2-normalised.

    Texts are truncated to ``max_length`` tokens and batched shortest first (little padding).
    """
    import torch

    out = np.zeros((len(texts), int(encoder.config.hidden_size)), np.float32)
    order = np.argsort([len(t) for t in texts], kind="stable")
    encoder.eval()
    with torch.inference_mode():
        for b in range(0, len(texts), batch_size):
            rows = order[b:b + batch_size]
            batch = tokenizer([texts[i] or "" for i in rows], padding=True, truncation=True, max_length=max_length,
                              return_tensors="pt").to(device)
            states = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            out[rows] = torch.nn.functional.normalize(pooled.float(), dim=1).cpu().numpy()
    return out


def embedding_udf(encoder: str, max_length: int, batch_size: int, threads: int) -> Any:
    """An iterator pandas UDF ``text -> array<float>`` that loads ``encoder`` once per task."""

    def embed(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        import torch

        from reviewlake.encoders import load_encoder, load_tokenizer

        torch.set_num_threads(threads)
        model, tokenizer = load_encoder(encoder), load_tokenizer(encoder)
        for texts in batches:
            vectors = sentence_embeddings(model, tokenizer, texts.fillna("").tolist(), max_length, batch_size)
            yield pd.Series(list(vectors))

    return F.pandas_udf(embed, T.ArrayType(T.FloatType()))  # type: ignore[call-overload]


@dataclass(frozen=True)
class EmbedReport:
    encoder: str
    silver_version: int
    embedded: int         # rows embedded by this run
    reused: int           # silver rows whose embedding was already there
    seconds: float

    def summary(self) -> str:
        rate = self.embedded / self.seconds if self.seconds else 0.0
        return (f"embeddings ({self.encoder}) of silver v{self.silver_version}: {self.embedded:,} embedded "
                f"({rate:,.1f} rows/s), {self.reused:,} reused")


def text_hash(column: str = "text_clean") -> Any:
    return F.sha2(F.coalesce(F.col(column), F.lit("")), 256).substr(1, 16)


def embeddings_for(spark: SparkSession, cfg: Config, encoder: str) -> DataFrame:
    """``review_id, text_hash, embedding`` of ``encoder`` (the table must exist: see :func:`embed_silver`)."""
    return spark.table(cfg.table("embeddings")).where(F.col("encoder") == encoder).select(
        "review_id", "text_hash", "embedding")


def embed_silver(spark: SparkSession, cfg: Config, encoder: str, max_length: int, batch_size: int,
                 silver: DataFrame, silver_version: int) -> EmbedReport:
    """Embed the rows of ``silver`` (a version of the silver table) that have no current embedding of
    ``encoder``, and MERGE them into ``tables.embeddings``; see the module docstring.

    A run killed half-way loses only what it had not committed: the MERGE is one Delta transaction,
    and a re-run embeds exactly the rows still missing.
    """
    clock = time.perf_counter()
    name = cfg.table("embeddings")
    table = tables.owned_table(spark, name, EMBEDDINGS_SCHEMA, "embeddings")
    rows = silver.select("review_id", "text_clean").withColumn("text_hash", text_hash())
    done = embeddings_for(spark, cfg, encoder).select("review_id", "text_hash")
    todo = rows.join(done, ["review_id", "text_hash"], "left_anti")
    sc = spark.sparkContext
    sc.setJobDescription(f"embed silver v{silver_version} with {encoder}")
    try:
        fresh = (todo.repartition(max(2, sc.defaultParallelism))
                 .withColumn("embedding", embedding_udf(encoder, max_length, batch_size, cfg.train.torch_threads)(
                     F.col("text_clean")))
                 # A literal time, not current_timestamp(): Delta's MERGE did not use the cached rows of a
                 # plan holding current_timestamp() and embedded every row a second time.
                 .select("review_id", F.lit(encoder).alias("encoder"), "text_hash", "embedding",
                         F.lit(datetime.now(timezone.utc)).alias("embedded_at"))
                 .persist(StorageLevel.DISK_ONLY))  # MERGE reads its source twice: embed once
        embedded = fresh.count()
        if embedded:
            (table.alias("t").merge(fresh.alias("s"), "t.review_id = s.review_id AND t.encoder = s.encoder")
             .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())
        fresh.unpersist()
    finally:
        sc.setJobDescription(None)  # type: ignore[arg-type]
    total = rows.count()
    report = EmbedReport(encoder, silver_version, embedded, total - embedded, time.perf_counter() - clock)
    log.info(report.summary())
    return report
