"""The ``multitask-int8`` stage: quantize a registered multi-task version, measure both, register.

No training: the source version (``--from``, default ``multitask@champion``) is loaded from the
registry, its linear layers are quantized to int8 (:func:`reviewlake.models.quantize.quantize_int8`),
and both models score the same validation and test rows of the silver version the source was
trained on, in one run: the figures per source, the size of the saved weights, and CPU reviews/s on
the same threads. The int8 model is registered as a version of ``multitask-int8`` with the
comparison, and its champion alias follows validation macro-F1 as for every model.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from reviewlake import registry
from reviewlake.config import Config

log = logging.getLogger(__name__)


def evaluation_rows(spark: SparkSession, cfg: Config, silver_version: int, sources: list[str], split: str) -> pd.DataFrame:
    """The rows of ``split`` a model trained on silver ``silver_version`` was measured on (the same
    fixed sample: the first ``train.eval_rows`` by review id)."""
    label = cfg.train.label
    silver = spark.read.format("delta").option("versionAsOf", silver_version).table(cfg.table("silver"))
    rows = (silver.where((F.col("split") == split) & F.col("source").isin(sources))
            .select("review_id", "source", "text_clean", F.coalesce(F.col(label), F.lit(-1)).cast("int").alias(
                "sentiment"), F.col("rating").cast("float").alias("rating"),
                F.transform("aspects", lambda a: a.cast("float")).alias("aspects"))
            .orderBy("review_id").limit(cfg.train.eval_rows))
    return rows.toPandas()


@dataclass
class Comparison:
    """A quantized model against its full-precision counterpart on the same rows, in one run."""

    text: str                            # what the run prints and logs as comparison.txt
    tags: dict[str, str]                 # for the registered version
    figures: dict[str, dict[str, Any]]   # per model: test predictions, rate (reviews/s), size_mb
    threads: int


def compare(reference: str, predictors: dict[str, Any], frame: pd.DataFrame, classes: list[str]) -> Comparison:
    """Score ``frame`` with the full-precision model and the quantized one (``predictors``: ``fp32`` first,
    then the other) one after the other on the same threads: test accuracy per source, size of the saved
    weights on disk, CPU reviews/s (after a warm-up batch each)."""
    import torch

    from reviewlake.evaluate import metrics
    from reviewlake.training.stage import evaluate_split

    threads = os.cpu_count() or 1
    figures: dict[str, dict[str, Any]] = {}
    for label, predictor in predictors.items():
        torch.set_num_threads(threads)
        predictor.scores(frame["text_clean"].head(16).tolist())  # warm-up: first-call allocations
        started = time.perf_counter()
        test = evaluate_split(predictor, frame, len(predictor.meta["aspects"]))
        figures[label] = {"test": test, "rate": len(frame) / (time.perf_counter() - started),
                          "size_mb": (predictor.model_dir / "model.pt").stat().st_size / 2 ** 20}
    full, quantized = (figures[label] for label in predictors)
    name = list(predictors)[1]
    before = {(s, m): v for s, m, v in metrics(full["test"], classes) if m == "accuracy"}
    lines = [f"{name} vs fp32 ({reference}), {len(frame):,} test rows, {threads} threads:",
             f"  weights {full['size_mb']:.1f} MB -> {quantized['size_mb']:.1f} MB "
             f"({quantized['size_mb'] / full['size_mb']:.2f}x)",
             f"  CPU reviews/s {full['rate']:.1f} -> {quantized['rate']:.1f} ({quantized['rate'] / full['rate']:.2f}x)"]
    lines += [f"  test accuracy {s}: {before[(s, 'accuracy')]:.4f} -> {v:.4f}"
              for s, m, v in metrics(quantized["test"], classes) if m == "accuracy" and (s, m) in before]
    tags = {"size_mb": f"{quantized['size_mb']:.1f}", "fp32_size_mb": f"{full['size_mb']:.1f}",
            "reviews_per_s": f"{quantized['rate']:.1f}", "fp32_reviews_per_s": f"{full['rate']:.1f}",
            "compared_with": reference}
    return Comparison("\n".join(lines), tags, figures, threads)


def quantize_stage(spark: SparkSession, cfg: Config, request: Any) -> Any:
    """Quantize, compare and register ``request.source_model`` as ``multitask-int8``."""
    import mlflow
    import torch

    from reviewlake.evaluate import confusion_png, metrics, write_metrics
    from reviewlake.models.quantize import METHOD, quantize_int8
    from reviewlake.predict import SENTIMENT_NAMES, MultitaskPredictor, MultitaskPyfunc
    from reviewlake.training.report import train_fingerprint
    from reviewlake.training.stage import TrainReport, _macro_f1_all, evaluate_split

    clock = time.perf_counter()
    reference = request.source_model or f"{cfg.registry.prefix}multitask@{cfg.registry.alias}"
    source = registry.find_version(cfg, reference)
    loaded = registry.load(cfg, reference).unwrap_python_model()
    full = getattr(loaded, "predictor", None)
    if not isinstance(full, MultitaskPredictor) or full.meta.get("quantized"):
        raise ValueError(f"{reference} is not a full-precision multitask model: nothing to quantize")
    silver_version = int(source.tags["silver_version"])
    sources = source.tags["sources"].split(",")
    run_id = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    run_dir = cfg.paths.checkpoints / run_id
    model_dir = run_dir / "model"
    shutil.copytree(full.model_dir, model_dir)
    torch.save(quantize_int8(copy.deepcopy(full.model)).state_dict(), model_dir / "model.pt")
    meta = {**full.meta, "quantized": "int8", "source_model": f"{source.name}/{source.version}"}
    (model_dir / "meta.json").write_text(json.dumps(meta, indent=2))
    int8 = MultitaskPredictor(model_dir, threads=os.cpu_count())
    classes = SENTIMENT_NAMES[full.meta["num_classes"]]
    frames = {split: evaluation_rows(spark, cfg, silver_version, sources, split) for split in ("validation", "test")}
    if frames["test"].empty:
        raise ValueError(f"no test rows of {sources} in silver v{silver_version}")

    comparison = compare(f"{source.name} v{source.version}", {"fp32": full, "int8": int8}, frames["test"], classes)
    figures = comparison.figures
    figures["int8"]["validation"] = evaluate_split(int8, frames["validation"], len(full.meta["aspects"]))
    test_rows = metrics(figures["int8"]["test"], classes)
    full_rows = metrics(figures["fp32"]["test"], classes)
    val_rows = metrics(figures["int8"]["validation"], classes)
    val_f1 = _macro_f1_all(figures["int8"]["validation"])

    name = registry.model_name(cfg, request.model, request.name)
    client = registry.configure(cfg)
    with mlflow.start_run(run_name=f"{request.model} {run_id}") as run:
        mlflow.log_params({"model_type": request.model, "source_model": f"{source.name}/{source.version}",
                           "silver_version": silver_version, "threads": comparison.threads})
        mlflow.log_metrics({f"{label}.{key}": figures[label][field] for label in ("fp32", "int8")
                            for key, field in (("size_mb", "size_mb"), ("reviews_per_s", "rate"))})
        registry.log_figures({"validation": val_rows, "test": test_rows, "test_fp32": full_rows})
        mlflow.log_text(comparison.text, "comparison.txt")
        mlflow.log_artifact(str(confusion_png(figures["int8"]["test"], classes, run_dir / "plots" / "confusion_test.png",
                                              f"{name} test")), "plots")
        mlflow.pyfunc.log_model(name="model", python_model=MultitaskPyfunc(), artifacts={"model": str(model_dir)},
                                code_paths=registry.code_paths(),
                                pip_requirements=["torch==2.9.1", "transformers==5.23.0", "pandas", "numpy"])
        tags = {"model_type": request.model, "silver_version": str(silver_version), "sources": ",".join(sources),
                "source_model": f"{source.name}/{source.version}", "quantization": METHOD,
                "train_config": train_fingerprint(cfg, request.model), **comparison.tags}
        val_ids = "\n".join(sorted(frames["validation"]["review_id"]))
        val_hash = hashlib.sha256(val_ids.encode()).hexdigest()[:16]
        registered = registry.register(cfg, client, name, run.info.run_id, "model", val_f1, val_hash, tags,
                                       request.promote, None)
    write_metrics(spark, cfg, name, registered.version, registered.run_id,
                  {"test": test_rows, "validation": val_rows})
    return TrainReport(run_id=run_id, model=request.model, name=name, version=registered.version,
                       promoted=registered.promoted, why=registered.why, silver_version=silver_version,
                       rows={s: len(f) for s, f in frames.items()}, val_macro_f1=val_f1, test_metrics=test_rows,
                       seconds=time.perf_counter() - clock, details=comparison.text)
