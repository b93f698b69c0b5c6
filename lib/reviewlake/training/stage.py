"""What every family's train stage shares: the request, the report, a run's folder and snapshot, the
launch through a backend, evaluation rows, and :func:`register_run` (MLflow run, registered version,
champion alias, ``model_metrics``).

``jobs/train.py`` parses the command line into a :class:`TrainRequest` and calls
:func:`reviewlake.families.train`, which hands it to the family's own stage.
"""

from __future__ import annotations

import json
import logging
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
from reviewlake.metrics import NO_PREDICTION, macro_f1_score
from reviewlake.training import backends
from reviewlake.training.data import Snapshot
from reviewlake.training.spec import RunSpec

log = logging.getLogger(__name__)


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


def run_spec(cfg: Config, snapshot: Snapshot, run_id: str, run_dir: Path, settings: dict[str, Any], use_gpu: bool,
             max_steps: int | None, **extra: Any) -> RunSpec:
    """The spec of a new run from the config, its family's ``settings`` and its snapshot; ``extra`` is what
    only that family's train function reads."""
    return RunSpec(run_id=run_id, model=settings, num_classes=snapshot.num_classes,
                   class_weights=snapshot.class_weights, files=snapshot.files, checkpoint_dir=str(run_dir),
                   torch_threads=cfg.train.torch_threads, checkpoint_every=cfg.train.checkpoint_every,
                   seed=cfg.train.seed, use_gpu=use_gpu, max_steps=max_steps,
                   eval_rows=cfg.train.eval_rows, extra=extra)


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


def new_run_id() -> str:
    """A run's id: its UTC start time and a random suffix (sorts by time, unique across machines)."""
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def snapshot_meta(snapshot: Snapshot) -> dict[str, Any]:
    meta = asdict(snapshot)
    meta["root"] = str(snapshot.root)
    return meta


def _load_snapshot(path: Path) -> Snapshot:
    meta = json.loads(path.read_text())
    meta["root"] = Path(meta["root"])
    return Snapshot(**meta)


def read_split(snapshot: Snapshot, split: str, limit: int,
               columns: tuple[str, ...] = ("review_id", "source", "text_clean", "sentiment", "rating", "aspects"),
               ) -> pd.DataFrame:
    """The first ``limit`` rows of a snapshot's split by review id (ids are hashes: a fixed random sample)."""
    files = snapshot.files[split]
    names = list(columns)
    frame = pq.read_table(files, columns=names).to_pandas() if files else pd.DataFrame(columns=names)
    return frame.sort_values("review_id").head(limit).reset_index(drop=True)


def evaluate_split(predictor: Any, frame: pd.DataFrame, aspects: int) -> Any:
    """Score one split with a predictor that has rating and aspect heads (windows for long texts) into
    :class:`evaluate.Predictions`."""
    from reviewlake.evaluate import Predictions

    s = predictor.scores(frame["text_clean"].fillna("").tolist())
    return Predictions(
        source=frame["source"].to_numpy(), y_true=frame["sentiment"].to_numpy(), proba=s["proba"],
        rating_true=frame["rating"].astype(float).to_numpy(), rating_pred=s["rating"],
        aspects_true=np.stack(frame["aspects"].to_numpy()) if len(frame) else np.zeros((0, aspects)),
        aspects_prob=s["aspects"],
    )


def prepare_run(cfg: Config, request: TrainRequest,
                build: Callable[[str, Path], tuple[Snapshot, RunSpec]]) -> tuple[str, Path, Snapshot, RunSpec]:
    """A new run (``build(run_id, run_dir)`` writes its snapshot and returns it with the run's spec,
    both saved beside the checkpoints) or, with ``request.resume``, the saved ones of that run."""
    run_id = request.resume or new_run_id()
    run_dir = cfg.paths.checkpoints / run_id
    snapshot_file, spec_file = run_dir / "snapshot.json", run_dir / "spec.json"
    if request.resume:
        if not spec_file.exists():
            raise ValueError(f"no run {request.resume} to resume in {cfg.paths.checkpoints}")
        saved = json.loads(spec_file.read_text())
        return run_id, run_dir, _load_snapshot(snapshot_file), RunSpec(**saved).with_(resume=True)
    snapshot, spec = build(run_id, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    snapshot_file.write_text(json.dumps(snapshot_meta(snapshot)))
    spec_file.write_text(json.dumps(asdict(spec)))
    return run_id, run_dir, snapshot, spec


def launch(spark: SparkSession, request: TrainRequest, fn: Callable[[RunSpec], dict[str, Any]],
           spec: RunSpec, run_id: str) -> dict[str, Any]:
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


def predicted_classes(sentiment: pd.Series, classes: list[str]) -> np.ndarray:
    """Class indices of a pyfunc's ``sentiment`` column; ``NO_PREDICTION`` where it gave none."""
    return sentiment.map({c: i for i, c in enumerate(classes)}).fillna(NO_PREDICTION).to_numpy().astype(np.int64)


def champion_scorer(cfg: Config, name: str, frame: Callable[[], pd.DataFrame], classes: list[str],
                    ) -> Callable[[str], float]:
    """``f(version)``: validation macro-F1 of version ``version`` of ``name`` on this run's validation rows
    (``frame()``: ``text_clean`` and the class ``sentiment``), through its pyfunc: how a champion chosen
    on other rows is compared."""

    def champion_f1(version: str) -> float:
        other = registry.load(cfg, f"{name}/{version}")
        rows = frame()
        got = other.predict(pd.DataFrame({"text": rows["text_clean"].fillna("")}))
        return macro_f1_score(rows["sentiment"].to_numpy().astype(np.int64),
                              predicted_classes(got["sentiment"], classes), len(classes))

    return champion_f1


def snapshot_validation(cfg: Config, snapshot: Snapshot) -> Callable[[], pd.DataFrame]:
    return lambda: read_split(snapshot, "validation", cfg.train.eval_rows, ("review_id", "text_clean", "sentiment"))


def validation_f1(predictions: Any) -> float:
    """Validation macro-F1 over every labelled row (what the alias is decided on)."""
    return macro_f1_score(predictions.y_true, predictions.proba.argmax(1), predictions.proba.shape[1])


@dataclass
class RunRecord:
    """What :func:`register_run` logs of one trained version.

    ``figures`` are ``(source, metric, value)`` rows per split, logged to MLflow and written to
    ``model_metrics``; ``predictions`` (per split) are drawn as confusion matrices; ``history`` holds the
    per-epoch validation entries, ``history_metric`` the key of the figure they hold.
    """

    params: dict[str, Any]
    tags: dict[str, str]
    figures: dict[str, list[tuple[str, str, float]]]
    val_f1: float
    val_hash: str
    python_model: Any
    artifacts: dict[str, str]
    requirements: list[str]
    metadata: dict[str, Any]
    classes: list[str]
    predictions: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    history_metric: str = "val_macro_f1"
    history_name: str | None = None        # the MLflow metric's name; default ``<history_metric>_epoch``
    metrics: dict[str, float] = field(default_factory=dict)
    plots: list[Path] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)


def register_run(spark: SparkSession, cfg: Config, request: TrainRequest, run_id: str, run_dir: Path,
                 record: RunRecord, champion_f1: Callable[[str], float] | None) -> registry.Registered:
    """Log one trained model as an MLflow run, register it as a new version of its name, decide the
    champion alias (:func:`registry.register`) and write its figures to ``model_metrics``."""
    import mlflow

    from reviewlake.evaluate import confusion_png, write_metrics

    name = registry.model_name(cfg, request.model, request.name)
    client = registry.configure(cfg)
    with mlflow.start_run(run_name=f"{request.model} {run_id}") as run:
        mlflow.log_params({"model_type": request.model, "checkpoint_run": run_id, **record.params})
        if record.config:
            mlflow.log_dict(record.config, "config.json")
        for h in record.history:
            mlflow.log_metric(record.history_name or f"{record.history_metric}_epoch", h[record.history_metric],
                              step=h["step"])
        registry.log_figures(record.figures)
        if record.metrics:
            mlflow.log_metrics(record.metrics)
        for split, predicted in record.predictions.items():
            mlflow.log_artifact(str(confusion_png(predicted, record.classes,
                                                  run_dir / "plots" / f"confusion_{split}.png", f"{name} {split}")),
                                "plots")
        for plot in record.plots:
            mlflow.log_artifact(str(plot), "plots")
        for file, text in record.texts.items():
            mlflow.log_text(text, file)
        mlflow.pyfunc.log_model(name="model", python_model=record.python_model, artifacts=record.artifacts,
                                code_paths=registry.code_paths(), pip_requirements=record.requirements,
                                metadata={"model_type": request.model, **record.metadata})
        registered = registry.register(cfg, client, name, run.info.run_id, "model", record.val_f1, record.val_hash,
                                       {"model_type": request.model, **record.tags}, request.promote, champion_f1)
    write_metrics(spark, cfg, name, registered.version, registered.run_id, record.figures)
    return registered


def report(request: TrainRequest, run_id: str, registered: registry.Registered, silver_version: int,
           rows: dict[str, int], val_f1: float, test_rows: list[tuple[str, str, float]], seconds: float,
           result: dict[str, Any] | None = None, details: str = "") -> TrainReport:
    """The :class:`TrainReport` of a registered run (``result``: the train function's, if it had one)."""
    result = result or {}
    return TrainReport(run_id=run_id, model=request.model, name=registered.name, version=registered.version,
                       promoted=registered.promoted, why=registered.why, silver_version=silver_version, rows=rows,
                       val_macro_f1=val_f1, test_metrics=test_rows, steps=int(result.get("steps", 0)),
                       resumed_from_step=int(result.get("resumed_from_step", 0)), seconds=seconds, details=details)


def preflight(spark: SparkSession, request: TrainRequest) -> None:
    """Fail before any work when the backend cannot start the request's processes."""
    backends.preflight(spark, request)
