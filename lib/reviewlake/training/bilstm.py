"""Training the BiLSTM on Spark: its train function and its train stage.

The stage builds the vocabulary from the train split in Spark, writes each row's word ids into the
run's snapshot (the same layout as the multi-task token snapshot, so the same readers serve it), and
runs :func:`train_bilstm` through either backend. The function trains with Adam (gradients clipped),
evaluates macro recall on validation after each epoch, keeps the best, stops after ``patience``
epochs without a better one, and checkpoints like the other loops.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pyspark.sql import SparkSession

from reviewlake import registry
from reviewlake.config import Config
from reviewlake.models.bilstm import PAD, BiLSTMClassifier
from reviewlake.models.multitask import masked_cross_entropy
from reviewlake.training import backends
from reviewlake.training.data import Snapshot
from reviewlake.training.loop import (batch_rows, end_epoch, finish, optimizer_step, read_shard, resume,
                                      save_latest, start_rank)

log = logging.getLogger(__name__)


def build_bilstm(spec: dict[str, Any]) -> BiLSTMClassifier:
    m = spec["model"]
    return BiLSTMClassifier(spec["vocab_size"], m["embedding"], list(m["hidden"]), spec["num_classes"], m["dropout"])


def pad_batch(ids: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Word ids padded to the longest in the batch, and each row's length."""
    lengths = torch.tensor([max(1, len(x)) for x in ids])
    batch = torch.full((len(ids), int(lengths.max())), PAD, dtype=torch.long)
    for i, x in enumerate(ids):
        batch[i, :len(x)] = torch.from_numpy(np.asarray(x, dtype=np.int64))
    return batch, lengths


def macro_recall(confusion: np.ndarray) -> float:
    """Mean recall over the classes present in the truth (rows of ``confusion``)."""
    support = confusion.sum(1)
    present = support > 0
    return float((np.diag(confusion)[present] / support[present]).mean()) if present.any() else 0.0


def train_bilstm(spec: dict[str, Any]) -> dict[str, Any]:
    """Train the BiLSTM as one rank of ``spec['comm']``; the same result dict on every rank."""
    comm, latest, best_path = start_rank(spec)
    m = spec["model"]
    train = read_shard(spec["files"]["train"], comm.rank, comm.world, spec["reader"])
    validation = read_shard(spec["files"]["validation"], comm.rank, comm.world, spec["reader"])
    steps_per_epoch = comm.min(len(train) // m["batch_size"])
    if steps_per_epoch == 0:
        raise ValueError(f"{len(train)} training rows per process is less than one batch of {m['batch_size']}")
    planned = steps_per_epoch * m["epochs"]
    if spec.get("max_steps"):
        planned = min(planned, spec["max_steps"])
    model = build_bilstm(spec).to(comm.device)
    optimizer: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=m["lr"])
    class_weights = torch.tensor(spec["class_weights"], dtype=torch.float32, device=comm.device)
    state: dict[str, Any] = {"step": 0, "epoch": 0, "batch": 0, "best": -1.0, "bad_epochs": 0, "history": []}
    state, resumed_from = resume(spec, comm, latest, model, optimizer, state)
    comm.broadcast(model, optimizer)
    trainer, opt = comm.trainer(model, optimizer)  # every parameter trains in every step: wrap once

    def checkpoint() -> None:
        save_latest(spec, comm, latest, model, opt, state)

    def evaluate() -> float:
        model.eval()
        k = spec["num_classes"]
        confusion = np.zeros((k, k), dtype=np.int64)
        with torch.no_grad():
            for b in range(0, len(validation), 512):
                rows = range(b, min(len(validation), b + 512))
                ids, lengths = pad_batch([validation.ids[i] for i in rows])
                pred = model(ids.to(comm.device), lengths).argmax(1).cpu().numpy()
                truth = validation.sentiment[list(rows)]
                keep = truth >= 0
                np.add.at(confusion, (truth[keep], pred[keep]), 1)
        model.train()
        return macro_recall(comm.sum(torch.from_numpy(confusion)).numpy())

    lengths_all = np.asarray([len(x) for x in train.ids])
    busy = 0.0
    while state["epoch"] < m["epochs"] and state["step"] < planned:
        started = time.perf_counter()
        model.train()
        for rows in batch_rows(lengths_all, m["batch_size"], steps_per_epoch, spec["seed"] + state["epoch"],
                               start=state["batch"]):
            ids, lengths = pad_batch([train.ids[i] for i in rows])
            labels = torch.from_numpy(train.sentiment[rows]).to(comm.device)
            logits = trainer(ids.to(comm.device), lengths)
            loss = masked_cross_entropy(logits, labels, class_weights)
            opt.zero_grad()
            loss.backward()
            optimizer_step(comm, model, opt, m["clip_norm"])
            state["step"] += 1
            state["batch"] += 1
            if comm.rank == 0 and state["step"] % 20 == 0:
                log.info("step %d/%d epoch %d loss %.4f", state["step"], planned, state["epoch"], loss.item())
            if state["step"] % spec["checkpoint_every"] == 0:
                checkpoint()
            if state["step"] >= planned:
                break
        busy += time.perf_counter() - started
        if state["batch"] < steps_per_epoch and state["step"] >= planned:
            break
        recall = evaluate()
        end_epoch(comm, state, model, best_path, recall, True, {"val_macro_recall": recall}, "macro recall")
        checkpoint()
        if state["bad_epochs"] >= m["patience"]:
            break
    finish(comm, state, model, best_path)
    return {"best_val_macro_recall": state["best"], "best_state": str(best_path), "steps": state["step"],
            "planned_steps": planned, "resumed_from_step": resumed_from, "history": state["history"],
            "world_size": comm.world, "steps_per_epoch": steps_per_epoch,
            "samples": (state["step"] - resumed_from) * m["batch_size"] * comm.world, "train_seconds": busy}


def train_bilstm_stage(spark: SparkSession, cfg: Config, request: Any) -> Any:
    """Vocabulary and snapshot, training through the backend, evaluation per source, registration."""
    import mlflow

    from reviewlake.evaluate import Predictions, confusion_png, metrics, write_metrics
    from reviewlake.predict import SENTIMENT_NAMES, BilstmPredictor, BilstmPyfunc
    from reviewlake.training.data import write_word_snapshot
    from reviewlake.training.report import train_fingerprint
    from reviewlake.training.stage import (TrainReport, _macro_f1_all, _read_split, _snapshot_meta, champion_scorer,
                                           launch, prepare_run)

    clock = time.perf_counter()
    backends.preflight(spark, request)
    settings = cfg.train.bilstm
    if request.epochs is not None:
        settings = settings.model_copy(update={"epochs": request.epochs})

    def build(run_id: str, run_dir: Path) -> tuple[Snapshot, dict[str, Any]]:
        snapshot, vocabulary = write_word_snapshot(
            spark, cfg, run_dir / "data", settings.vocab_size, settings.min_count, settings.max_length,
            request.max_rows or cfg.train.max_rows, request.sources or cfg.train.sources,
            parts=max(2, request.num_proc) * 2)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "vocab.json").write_text(json.dumps(vocabulary))
        return snapshot, {
            "run_id": run_id, "model": settings.model_dump(), "num_classes": snapshot.num_classes,
            "vocab_size": len(vocabulary) + 2, "class_weights": snapshot.class_weights, "files": snapshot.files,
            "checkpoint_dir": str(run_dir), "torch_threads": cfg.train.torch_threads,
            "checkpoint_every": cfg.train.checkpoint_every, "seed": cfg.train.seed, "use_gpu": request.use_gpu,
            "max_steps": request.max_steps, "resume": False}

    run_id, run_dir, snapshot, spec = prepare_run(cfg, request, build)
    result = launch(spark, request, train_bilstm, spec, run_id)

    model = build_bilstm(spec)
    model.load_state_dict(torch.load(result["best_state"], map_location="cpu")["model"])
    model_dir = run_dir / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), model_dir / "model.pt")
    shutil.copy(run_dir / "vocab.json", model_dir / "vocab.json")
    meta = {"model_type": "bilstm", "num_classes": snapshot.num_classes, "label": cfg.train.label,
            "vocab_size": spec["vocab_size"], "embedding": settings.embedding, "hidden": settings.hidden,
            "max_length": settings.max_length, "cleaning": cfg.preprocess.cleaning.model_dump()}
    (model_dir / "meta.json").write_text(json.dumps(meta, indent=2))
    predictor = BilstmPredictor(model_dir)
    classes = SENTIMENT_NAMES[snapshot.num_classes]

    def predictions(split: str) -> Any:
        frame = _read_split(snapshot, split, cfg.train.eval_rows, ("review_id", "source", "text_clean", "sentiment"))
        proba = predictor.scores(frame["text_clean"].fillna("").tolist())["proba"]
        return Predictions(source=frame["source"].to_numpy(), y_true=frame["sentiment"].to_numpy().astype(int),
                           proba=proba, rating_true=np.full(len(frame), np.nan))

    preds = {split: predictions(split) for split in ("validation", "test")}
    val_rows, test_rows = metrics(preds["validation"], classes), metrics(preds["test"], classes)
    val_f1 = _macro_f1_all(preds["validation"])
    name = registry.model_name(cfg, request.model, request.name)
    client = registry.configure(cfg)
    with mlflow.start_run(run_name=f"{request.model} {run_id}") as run:
        mlflow.log_params({"model_type": request.model, "backend": request.backend, "num_proc": request.num_proc,
                           "silver_version": snapshot.silver_version, "label": cfg.train.label,
                           "checkpoint_run": run_id, "vocab_size": spec["vocab_size"],
                           **{f"bilstm.{k}": v for k, v in settings.model_dump().items()}})
        mlflow.log_dict({"train": cfg.train.model_dump(mode="json"), "snapshot": _snapshot_meta(snapshot),
                         "result": result}, "config.json")
        for h in result["history"]:
            mlflow.log_metric("val_macro_recall_epoch", h["val_macro_recall"], step=h["step"])
        registry.log_figures({"validation": val_rows, "test": test_rows})
        for split in ("validation", "test"):
            mlflow.log_artifact(str(confusion_png(preds[split], classes, run_dir / "plots" / f"confusion_{split}.png",
                                                  f"{name} {split}")), "plots")
        mlflow.pyfunc.log_model(name="model", python_model=BilstmPyfunc(), artifacts={"model": str(model_dir)},
                                code_paths=registry.code_paths(), pip_requirements=["torch==2.9.1", "pandas", "numpy"])
        tags = {"model_type": request.model, "silver_version": str(snapshot.silver_version),
                "sources": ",".join(sorted({s for v in snapshot.rows_by_source.values() for s in v})),
                "rows": json.dumps(snapshot.rows_by_source), "backend": request.backend,
                "train_config": train_fingerprint(cfg, request.model)}
        registered = registry.register(cfg, client, name, run.info.run_id, "model", val_f1, snapshot.validation_hash,
                                       tags, request.promote, champion_scorer(cfg, name, snapshot, classes))
    write_metrics(spark, cfg, name, registered.version, registered.run_id,
                  {"test": test_rows, "validation": val_rows})
    shutil.rmtree(run_dir / "data", ignore_errors=True)
    return TrainReport(run_id=run_id, model=request.model, name=name, version=registered.version,
                       promoted=registered.promoted, why=registered.why, silver_version=snapshot.silver_version,
                       rows=snapshot.rows, val_macro_f1=val_f1, test_metrics=test_rows, steps=result["steps"],
                       resumed_from_step=result["resumed_from_step"], seconds=time.perf_counter() - clock)
