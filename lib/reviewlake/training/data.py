"""Training data: silver at one Delta version, tokenized in Spark, written as the run's Parquet snapshot.

Data crosses the Spark/torch boundary once. Spark reads ``reviews_silver`` at a pinned Delta version
(recorded in the model version), tokenizes ``text_clean`` with the encoder's tokenizer in an
iterator pandas UDF, and writes token ids and targets per split under
``<paths.checkpoints>/<run_id>/data/<split>/``. A reader outside Spark (pyarrow, Petastorm) reads
exactly the files of that snapshot, never the table's folder, which also holds files Delta removed.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from reviewlake import tables
from reviewlake.config import Config

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Snapshot:
    """What a training run reads, and where it came from."""

    root: Path
    files: dict[str, list[str]]
    rows: dict[str, int]
    rows_by_source: dict[str, dict[str, int]]
    silver_version: int
    validation_hash: str
    class_weights: list[float]
    num_classes: int


def silver_at_version(spark: SparkSession, cfg: Config) -> tuple[DataFrame, int]:
    """The silver table at its latest Delta version, and that version."""
    name = cfg.table("silver")
    if not spark.catalog.tableExists(name):
        raise ValueError(f"table {name} does not exist: run ingest and preprocess first")
    version = tables.table_version(DeltaTable.forName(spark, name))
    return spark.read.format("delta").option("versionAsOf", version).table(name), version


def select_rows(silver: DataFrame, cfg: Config, max_rows: int | None, sources: list[str]) -> DataFrame:
    """Rows of the configured sources; at most ``max_rows`` train rows, the same ones every run."""
    if sources:
        known = {r[0] for r in silver.select("source").distinct().collect()}
        missing = sorted(set(sources) - known)
        if missing:
            raise ValueError(f"source(s) {missing} are not in silver (it has {sorted(known)})")
        silver = silver.where(F.col("source").isin(sources))
    if max_rows is not None:
        # The max_rows train rows of smallest (hash, review_id), kept by a filter on the last one's key:
        # a limit in the plan would stop the tokenizing (or embedding) Python worker mid-input, and Spark
        # does not reuse such a worker; the next one imports transformers and loads the tokenizer again
        # (~2 s on every --max-rows snapshot).
        key = F.xxhash64("review_id", F.lit(cfg.train.seed))
        last = (silver.where("split = 'train'").select(key.alias("h"), "review_id").orderBy("h", "review_id")
                .limit(max_rows).agg(F.max(F.struct("h", "review_id")).alias("last")).collect()[0]["last"])
        if last is not None:
            kept = (key < last["h"]) | ((key == last["h"]) & (F.col("review_id") <= last["review_id"]))
            silver = silver.where((F.col("split") != "train") | kept)
    return silver


def tokenize(df: DataFrame, encoder: str, max_tokens: int) -> DataFrame:
    """Add ``input_ids``: token ids without special tokens, at most ``max_tokens``, as int32 bytes.

    Bytes, not ``array<int>``: Petastorm's batch reader needs every value of a column to have one
    length, and reviews do not. An iterator pandas UDF builds the tokenizer once per task.

    The driver loads the encoder's Hugging Face tokenizer and ships its Rust backend (the
    ``tokenizers.Tokenizer`` that tokenizer calls, as JSON) to the workers: they tokenize exactly as it
    does, without importing transformers, which imports torch (about 4 CPU seconds per worker here,
    more than tokenizing a snapshot of a few thousand reviews takes).
    """
    from reviewlake.encoders import load_tokenizer

    backend = load_tokenizer(encoder).backend_tokenizer.to_str()

    def ids(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        encode = token_ids(backend, max_tokens)
        for texts in batches:
            yield pd.Series([np.asarray(x, dtype="<i4").tobytes() for x in encode(texts.fillna("").tolist())])

    return df.withColumn("input_ids", F.pandas_udf(ids, "binary")(F.col("text_clean")))  # type: ignore[call-overload]


def token_ids(backend: str, max_tokens: int) -> Callable[[list[str]], list[list[int]]]:
    """Texts to their token ids by a tokenizer backend (``backend_tokenizer.to_str()`` of a Hugging Face
    tokenizer): no special tokens, no padding, at most ``max_tokens`` each, as that tokenizer's
    ``tokenizer(texts, add_special_tokens=False, truncation=True, max_length=max_tokens)`` gives them."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(backend)
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_tokens)
    return lambda texts: [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)]


def write_snapshot(spark: SparkSession, cfg: Config, root: Path, encoder: str, max_tokens: int,
                   max_rows: int | None, sources: list[str], parts: int) -> Snapshot:
    """Tokenize silver and write the run's snapshot; return what it holds.

    ``parts`` files per split, so Petastorm can give each of that many readers its own row groups.
    """
    label = cfg.train.label
    silver, version = silver_at_version(spark, cfg)
    rows = select_rows(silver, cfg, max_rows, sources)
    frame = tokenize(rows, encoder, max_tokens).select(
        "review_id", "source", "split", "text_clean", "input_ids",
        F.coalesce(F.col(label), F.lit(-1)).cast("int").alias("sentiment"),
        F.col("rating").cast("float").alias("rating"),
        F.transform("aspects", lambda a: a.cast("float")).alias("aspects"),
    )
    return write_splits(spark, cfg, frame, root, parts, version, sources, f"tokenize silver v{version}")


def write_feature_snapshot(spark: SparkSession, cfg: Config, root: Path, encoder: str, max_length: int,
                           batch_size: int, max_rows: int | None, sources: list[str], parts: int) -> Snapshot:
    """The joint sentiment-topic model's snapshot: each selected silver row's encoder embedding (from
    ``tables.embeddings``, computed first where missing) as float32 bytes in ``features``, with its
    label, source and category."""
    from reviewlake.embeddings import embed_silver, embeddings_for

    label = cfg.train.label
    silver, version = silver_at_version(spark, cfg)
    rows = select_rows(silver, cfg, max_rows, sources)
    embed_silver(spark, cfg, encoder, max_length, batch_size, rows, version)

    def as_bytes(vectors: pd.Series) -> pd.Series:
        return vectors.map(lambda a: np.asarray(a, dtype="<f4").tobytes())

    to_bytes = F.pandas_udf(as_bytes, "binary")  # type: ignore[call-overload]
    frame = (rows.withColumn("text_hash", F.sha2(F.coalesce("text_clean", F.lit("")), 256).substr(1, 16))
             .join(embeddings_for(spark, cfg, encoder), ["review_id", "text_hash"])
             .select("review_id", "source", "split", "category", "text_clean",
                     to_bytes("embedding").alias("features"),
                     F.coalesce(F.col(label), F.lit(-1)).cast("int").alias("sentiment")))
    return write_splits(spark, cfg, frame, root, parts, version, sources, f"embeddings of silver v{version}")


def write_splits(spark: SparkSession, cfg: Config, frame: DataFrame, root: Path, parts: int, version: int,
                 sources: list[str], what: str) -> Snapshot:
    """Write ``frame`` (with ``split``, ``source``, ``review_id`` and ``sentiment``, -1 for none) as
    ``parts`` Parquet files per split under ``root``, and describe them."""
    num_classes = 2 if cfg.train.label == "sentiment_binary" else 3
    spark.sparkContext.setJobDescription(f"train: {what} into {root}")
    try:
        # One pass over silver for the three splits (tokenizing or embedding is the costly part): each of
        # the ``parts`` tasks writes its share of every split. A static overwrite replaces the whole folder,
        # whatever the session's spark.sql.sources.partitionOverwriteMode.
        frame.repartition(parts).write.mode("overwrite").option("partitionOverwriteMode", "static").partitionBy(
            "split").parquet(str(root))
        counts: list[Row] = []
        validation_ids: list[str] = []
        if any(root.glob("split=*")):  # none when no silver row was selected
            written = spark.read.parquet(str(root))
            counts = written.groupBy("split", "source", "sentiment").count().collect()
            validation_ids = sorted(r[0] for r in written.where("split = 'validation'").select("review_id").collect())
    finally:
        spark.sparkContext.setJobDescription(None)  # type: ignore[arg-type]
    for split in SPLITS:  # plain folder names: readers outside Spark must not take them for partitions
        written_split, folder = root / f"split={split}", root / split
        if written_split.exists():
            written_split.rename(folder)
        else:
            folder.mkdir(parents=True, exist_ok=True)
    files = {s: sorted(str(p) for p in (root / s).glob("*.parquet")) for s in SPLITS}
    by_split: dict[str, dict[str, int]] = {s: {} for s in SPLITS}
    train_classes: dict[int, int] = {}
    for r in counts:
        by_split[r["split"]][r["source"]] = by_split[r["split"]].get(r["source"], 0) + r["count"]
        if r["split"] == "train" and r["sentiment"] >= 0:
            train_classes[r["sentiment"]] = train_classes.get(r["sentiment"], 0) + r["count"]
    total = sum(train_classes.values())
    weights = [total / (num_classes * train_classes[c]) if train_classes.get(c) else 1.0 for c in range(num_classes)]
    snapshot = Snapshot(
        root=root, files=files, rows={s: sum(v.values()) for s, v in by_split.items()},
        rows_by_source=by_split, silver_version=version,
        validation_hash=hashlib.sha256("\n".join(validation_ids).encode()).hexdigest()[:16],
        class_weights=weights, num_classes=num_classes,
    )
    if snapshot.rows["train"] == 0:
        raise ValueError(f"no training rows in {cfg.table('silver')} v{version} for sources {sources or 'all'}")
    log.info("snapshot of silver v%d: %s rows per split in %s", version, snapshot.rows, root)
    return snapshot
