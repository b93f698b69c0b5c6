"""The train stage: snapshot silver, train through a backend, evaluate per source, register in MLflow.

``jobs/train.py`` parses the command line into a :class:`TrainRequest` and calls :func:`train`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from pyspark.sql import SparkSession

from reviewlake import registry
from reviewlake.config import Config
from reviewlake.training import backends
from reviewlake.training.data import Snapshot, write_snapshot
from reviewlake.training.report import train_fingerprint

log = logging.getLogger(__name__)

MODEL_TYPES = ("multitask", "linear", "joint-topic", "multitask-int8", "bilstm", "multitask-bitlinear")


@dataclass(frozen=True)
class TrainRequest:
    """What one ``train`` run was asked to do (command-line options over config)."""

    model: str
    backend: str
    num_proc: int
    local_mode: bool
    use_gpu: bool
    epochs: int | None = None
    max_rows: int | None = None
    name: str | None = None
    resume: str | None = None
    promote: bool = False
    max_steps: int | None = None
    sources: list[str] = field(default_factory=list)
    candidate: str | None = None      # one of train.candidates (multitask); None: train.multitask as it is
    # multitask-int8: the version to quantize; multitask-bitlinear: the full-precision version to compare
    # with (default multitask@champion)
    source_model: str | None = None


@dataclass
class TrainReport:
    run_id: str
    model: str
    name: str
    version: str
    promoted: bool
    why: str
    silver_version: int
    rows: dict[str, int]
    val_macro_f1: float
    test_metrics: list[tuple[str, str, float]]
    steps: int = 0
    resumed_from_step: int = 0
    seconds: float = 0.0
    details: str = ""      # more lines for the summary (the joint model's topic table)

    def summary(self) -> str:
        accuracy = {s: v for s, m, v in self.test_metrics if m == "accuracy"}
        return (f"{self.model} -> {self.name} v{self.version} ({'champion' if self.promoted else 'not promoted'}: "
                f"{self.why}); silver v{self.silver_version}, rows {self.rows}; validation macro-F1 "
                f"{self.val_macro_f1:.4f}; test accuracy " + ", ".join(f"{s} {a:.4f}" for s, a in accuracy.items())
                + (f"; resumed at step {self.resumed_from_step}" if self.resumed_from_step else "")
                + f"; {self.steps} steps; {self.seconds:.0f}s" + (f"\n{self.details}" if self.details else ""))


def _snapshot_meta(snapshot: Snapshot) -> dict[str, Any]:
    meta = asdict(snapshot)
    meta["root"] = str(snapshot.root)
    return meta


def _load_snapshot(path: Path) -> Snapshot:
    meta = json.loads(path.read_text())
    meta["root"] = Path(meta["root"])
    return Snapshot(**meta)


def _read_split(snapshot: Snapshot, split: str, limit: int,
                columns: tuple[str, ...] = ("review_id", "source", "text_clean", "sentiment", "rating", "aspects"),
                ) -> pd.DataFrame:
    files = snapshot.files[split]
    names = list(columns)
    frame = pq.read_table(files, columns=names).to_pandas() if files else pd.DataFrame(columns=names)
    # Review ids are hashes: the first rows by id are a fixed random sample of the split.
    return frame.sort_values("review_id").head(limit).reset_index(drop=True)


def evaluate_split(predictor: Any, frame: pd.DataFrame, aspects: int) -> Any:
    """Score one split with the predictor (windows for long texts) into :class:`evaluate.Predictions`."""
    from reviewlake.evaluate import Predictions

    s = predictor.scores(frame["text_clean"].fillna("").tolist())
    return Predictions(
        source=frame["source"].to_numpy(), y_true=frame["sentiment"].to_numpy(), proba=s["proba"],
        rating_true=frame["rating"].astype(float).to_numpy(), rating_pred=s["rating"],
        aspects_true=np.stack(frame["aspects"].to_numpy()) if len(frame) else np.zeros((0, aspects)),
        aspects_prob=s["aspects"],
    )


def loop_spec(cfg: Config, settings: Any, snapshot: Snapshot, run_id: str, run_dir: Path, use_gpu: bool,
              max_steps: int | None) -> dict[str, Any]:
    """What :func:`~reviewlake.training.loop.train_multitask` needs, as a pickleable dict (``settings``
    are the multitask settings of the run)."""
    from reviewlake.models.multitask import load_tokenizer

    tokenizer = load_tokenizer(settings.encoder)
    return {
        "run_id": run_id, "model": settings.model_dump(), "num_classes": snapshot.num_classes,
        "num_aspects": len(cfg.preprocess.labels.aspects), "class_weights": snapshot.class_weights,
        "files": snapshot.files, "checkpoint_dir": str(run_dir), "torch_threads": cfg.train.torch_threads,
        "checkpoint_every": cfg.train.checkpoint_every, "seed": cfg.train.seed, "use_gpu": use_gpu,
        "max_steps": max_steps, "resume": False, "eval_rows": cfg.train.eval_rows,
        "tokens": [tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id],
    }


def resolved(cfg: Config, candidate: str | None) -> Config:
    """``cfg`` with the training settings of ``candidate`` (see ``TrainSettings.candidate``)."""
    return cfg.model_copy(update={"train": cfg.train.candidate(candidate)})


def train(spark: SparkSession, cfg: Config, request: TrainRequest) -> TrainReport:
    """Run one training request end to end; see the module docstring."""
    if request.model not in MODEL_TYPES:
        raise ValueError(f"unknown model '{request.model}'; one of: {', '.join(MODEL_TYPES)}")
    if request.candidate is not None and request.model != "multitask":
        raise ValueError(f"--candidate applies to multitask, not {request.model}")
    cfg = resolved(cfg, request.candidate)
    if request.model == "linear":
        from reviewlake.training.linear import train_linear_stage

        return train_linear_stage(spark, cfg, request)
    if request.model == "bilstm":
        from reviewlake.training.bilstm import train_bilstm_stage

        return train_bilstm_stage(spark, cfg, request)
    if request.model == "multitask-int8":
        from reviewlake.training.quantize import quantize_stage

        return quantize_stage(spark, cfg, request)
    if request.model == "joint-topic":
        from reviewlake.training.joint_topic import train_joint_topic_stage

        return train_joint_topic_stage(spark, cfg, request)
    return train_multitask_stage(spark, cfg, request)


def prepare_run(cfg: Config, request: TrainRequest,
                build: Callable[[str, Path], tuple[Snapshot, dict[str, Any]]]) -> tuple[str, Path, Snapshot, dict[str, Any]]:
    """A new run (``build(run_id, run_dir)`` writes its snapshot and returns it with the loop's spec,
    both saved beside the checkpoints) or, with ``request.resume``, the saved ones of that run."""
    run_id = request.resume or f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    run_dir = cfg.paths.checkpoints / run_id
    snapshot_file, spec_file = run_dir / "snapshot.json", run_dir / "spec.json"
    if request.resume:
        if not spec_file.exists():
            raise ValueError(f"no run {request.resume} to resume in {cfg.paths.checkpoints}")
        return run_id, run_dir, _load_snapshot(snapshot_file), json.loads(spec_file.read_text()) | {"resume": True}
    snapshot, spec = build(run_id, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    snapshot_file.write_text(json.dumps(_snapshot_meta(snapshot)))
    spec_file.write_text(json.dumps(spec))
    return run_id, run_dir, snapshot, spec


def launch(spark: SparkSession, request: TrainRequest, fn: Callable[[dict[str, Any]], dict[str, Any]],
           spec: dict[str, Any], run_id: str) -> dict[str, Any]:
    """Run the train function ``fn(spec)`` through the request's backend; its result."""
    log.info("train %s run %s: %s on %d process(es)%s", request.model, run_id, request.backend, request.num_proc,
             " (resuming)" if request.resume else "")
    spark.sparkContext.setJobDescription(f"train {request.model} {run_id} ({request.backend})")
    try:
        result = backends.run(spark, request.backend, fn, spec, request.num_proc, request.local_mode, request.use_gpu)
    finally:
        spark.sparkContext.setJobDescription(None)  # type: ignore[arg-type]
    log.info("trained: %s", {k: v for k, v in result.items() if k != "history"})
    return result


def champion_scorer(cfg: Config, name: str, snapshot: Snapshot, classes: list[str]) -> Callable[[str], float]:
    """``f(version)``: validation macro-F1 of version ``version`` of ``name`` on this run's validation
    rows, through its pyfunc (how a champion chosen on other rows is compared)."""

    def champion_f1(version: str) -> float:
        other = registry.load(cfg, f"{name}/{version}")
        frame = _read_split(snapshot, "validation", cfg.train.eval_rows, ("review_id", "text_clean", "sentiment"))
        got = other.predict(pd.DataFrame({"text": frame["text_clean"]}))
        return _macro_f1_labels(frame["sentiment"].to_numpy(), got["sentiment"].map(
            {c: i for i, c in enumerate(classes)}).fillna(-1).to_numpy())

    return champion_f1


def train_multitask_stage(spark: SparkSession, cfg: Config, request: TrainRequest) -> TrainReport:
    import mlflow
    import torch

    from reviewlake.evaluate import confusion_png, metrics, write_metrics
    from reviewlake.models.bitlinear import METHOD
    from reviewlake.models.multitask import load_tokenizer
    from reviewlake.predict import SENTIMENT_NAMES, MultitaskPredictor, MultitaskPyfunc, save_model_dir
    from reviewlake.training.loop import build_model, train_multitask

    clock = time.perf_counter()
    backends.preflight(spark, request)
    bitlinear = request.model == "multitask-bitlinear"
    settings = cfg.train.bitlinear_multitask() if bitlinear else cfg.train.multitask
    if request.epochs is not None:
        settings = settings.model_copy(update={"epochs": request.epochs})
    max_tokens = settings.max_length + settings.window_stride * (settings.max_windows - 1)

    def build(run_id: str, run_dir: Path) -> tuple[Snapshot, dict[str, Any]]:
        snapshot = write_snapshot(spark, cfg, run_dir / "data", settings.encoder, max_tokens,
                                  request.max_rows or cfg.train.max_rows, request.sources or cfg.train.sources,
                                  parts=max(2, request.num_proc) * 2)
        spec = loop_spec(cfg, settings, snapshot, run_id, run_dir, request.use_gpu, request.max_steps)
        return snapshot, spec | ({"bitlinear": cfg.train.bitlinear.activation_bits} if bitlinear else {})

    run_id, run_dir, snapshot, spec = prepare_run(cfg, request, build)
    result = launch(spark, request, train_multitask, spec, run_id)

    model = build_model(spec)
    model.load_state_dict(torch.load(result["best_state"], map_location="cpu")["model"])
    aspects = list(cfg.preprocess.labels.aspects)
    rated = pq.read_table(snapshot.files["train"], columns=["rating"]).column("rating").drop_null()
    meta = {"model_type": "multitask", "rating_rows": len(rated), "num_classes": snapshot.num_classes, "label": cfg.train.label,
            "aspects": aspects, "pooling": settings.pooling, "max_length": settings.max_length,
            "window_stride": settings.window_stride, "max_windows": settings.max_windows,
            "encoder": settings.encoder, "cleaning": cfg.preprocess.cleaning.model_dump()}
    if bitlinear:
        meta |= {"quantized": "bitlinear", "activation_bits": cfg.train.bitlinear.activation_bits}
    model_dir = save_model_dir(model, load_tokenizer(settings.encoder), meta, run_dir / "model")
    predictor = MultitaskPredictor(model_dir, threads=os.cpu_count())  # the driver scores with all its cores
    classes = SENTIMENT_NAMES[snapshot.num_classes]
    frames = {split: _read_split(snapshot, split, cfg.train.eval_rows) for split in ("validation", "test")}
    # A BitLinear model's test figures come from its comparison with full precision (the same rows, scored once).
    comparison = compare_with_full_precision(cfg, request, predictor, frames["test"], classes) if bitlinear else None
    predictions = {split: comparison.figures["bitlinear"]["test"] if comparison is not None and split == "test"
                   else evaluate_split(predictor, frame, len(aspects)) for split, frame in frames.items()}
    val_rows = metrics(predictions["validation"], classes)
    test_rows = metrics(predictions["test"], classes)
    val_f1 = _macro_f1_all(predictions["validation"])

    name = registry.model_name(cfg, request.model, request.name)
    client = registry.configure(cfg)
    with mlflow.start_run(run_name=f"{request.model} {run_id}") as run:
        mlflow.log_params({"model_type": request.model, "backend": request.backend, "num_proc": request.num_proc,
                           "encoder": settings.encoder, "silver_version": snapshot.silver_version,
                           "label": cfg.train.label, "checkpoint_run": run_id,
                           "candidate": request.candidate or "default", **{
                               f"multitask.{k}": v for k, v in settings.model_dump().items()}})
        mlflow.log_dict({"train": cfg.train.model_dump(mode="json"), "preprocess": cfg.preprocess.model_dump(
            mode="json"), "snapshot": _snapshot_meta(snapshot), "result": result}, "config.json")
        for h in result["history"]:
            mlflow.log_metric("val_macro_f1_epoch", h["val_macro_f1"], step=h["step"])
        registry.log_figures({"validation": val_rows, "test": test_rows})
        plots = run_dir / "plots"
        for split in ("validation", "test"):
            mlflow.log_artifact(str(confusion_png(predictions[split], classes, plots / f"confusion_{split}.png",
                                                  f"{name} {split}")), "plots")
        mlflow.pyfunc.log_model(name="model", python_model=MultitaskPyfunc(), artifacts={"model": str(model_dir)},
                                code_paths=registry.code_paths(),
                                pip_requirements=["torch==2.9.1", "transformers==5.23.0", "pandas", "numpy"])
        tags = {"model_type": request.model, "silver_version": str(snapshot.silver_version),
                "sources": ",".join(sorted({s for v in snapshot.rows_by_source.values() for s in v})),
                "rows": json.dumps(snapshot.rows_by_source), "encoder": settings.encoder,
                "backend": request.backend, "train_config": train_fingerprint(cfg, request.model),
                "candidate": request.candidate or "default"}
        if comparison is not None:
            mlflow.log_text(comparison.text, "comparison.txt")
            tags |= {"quantization": METHOD, **comparison.tags}

        registered = registry.register(cfg, client, name, run.info.run_id, "model", val_f1, snapshot.validation_hash,
                                       tags, request.promote, champion_scorer(cfg, name, snapshot, classes))
    write_metrics(spark, cfg, name, registered.version, registered.run_id,
                  {"test": test_rows, "validation": val_rows})
    shutil.rmtree(run_dir / "data", ignore_errors=True)  # the snapshot served its run; the model is registered
    return TrainReport(run_id=run_id, model=request.model, name=name, version=registered.version,
                       promoted=registered.promoted, why=registered.why, silver_version=snapshot.silver_version,
                       rows=snapshot.rows, val_macro_f1=val_f1, test_metrics=test_rows, steps=result["steps"],
                       resumed_from_step=result["resumed_from_step"], seconds=time.perf_counter() - clock,
                       details=comparison.text if comparison is not None else "")


def compare_with_full_precision(cfg: Config, request: TrainRequest, predictor: Any, frame: pd.DataFrame,
                                classes: list[str]) -> Any:
    """A BitLinear model against the full-precision multitask version ``request.source_model`` on the same
    test rows, in this run (None when there is no such version). By default the version of the same
    encoder (the seed compared a model with its own full-precision self): the champion if it has that
    encoder, else the best on validation of those that have."""
    from reviewlake.training.quantize import compare

    reference = request.source_model or same_encoder_version(cfg, cfg.train.bitlinear_multitask().encoder)
    try:
        full = registry.load(cfg, reference).unwrap_python_model().predictor
    except ValueError as e:
        log.warning("no full-precision model to compare with: %s", e)
        return None
    return compare(reference, {"fp32": full, "bitlinear": predictor}, frame, classes)


def same_encoder_version(cfg: Config, encoder: str) -> str:
    """``multitask@ALIAS`` when the champion was trained with ``encoder``, else ``multitask/N`` for the best
    version on validation with that encoder (the champion reference when none has it)."""
    name = f"{cfg.registry.prefix}multitask"
    champion = f"{name}@{cfg.registry.alias}"
    client = registry.configure(cfg)
    versions = [v for v in client.search_model_versions(f"name='{name}'") if v.tags.get("encoder") == encoder]
    current = registry.champion(client, name, cfg.registry.alias)
    if not versions or (current is not None and current.tags.get("encoder") == encoder):
        return champion
    best = max(versions, key=lambda v: float(v.tags.get(registry.VAL_F1_TAG, "-1")))
    return f"{name}/{best.version}"


def _macro_f1_labels(y: np.ndarray, pred: np.ndarray) -> float:
    from reviewlake.training.loop import macro_f1

    keep = y >= 0
    k = int(max(y.max(initial=0), pred.max(initial=0))) + 1
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y[keep], np.clip(pred[keep], 0, k - 1)), 1)
    return macro_f1(confusion)


def _macro_f1_all(p: Any) -> float:
    """Validation macro-F1 over every labelled row (what the alias is decided on)."""
    return _macro_f1_labels(p.y_true, p.proba.argmax(1))
