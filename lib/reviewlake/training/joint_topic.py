"""Training the joint sentiment-topic model on Spark: its train function and its train stage.

The stage embeds silver's text with the frozen encoder once (``tables.embeddings``, reused across
runs), writes the run's snapshot of embeddings and labels, and runs :func:`train_joint_topic` through
the same backends as the multi-task model (TorchDistributor or Horovod, pyarrow or Petastorm
reading each rank's shard). The function trains the autoencoder and sentiment head for
``pretrain_epochs``, sets the centroids by k-means on the latent (rank 0's, broadcast), then trains
with the clustering term, recomputing the target distribution every ``target_every`` steps from
every rank's soft topic counts. It checkpoints like the multi-task loop and early-stops on
validation macro-F1 during the clustering epochs.

After training, the stage assigns training rows to topics, describes the topics in Spark (c-TF-IDF
terms, labels, examples, sentiment shares), measures them (silhouette on the latent, NPMI
coherence, diversity, and NMI / ARI against the product category where a source has one), and
registers the model with its topics.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch
from pyspark.sql import SparkSession

from reviewlake import registry
from reviewlake.config import Config
from reviewlake.models.joint_topic import JointTopicModel, joint_loss, kmeans, target_distribution
from reviewlake.training import backends
from reviewlake.training.data import Snapshot
from reviewlake.training.loop import (batch_rows, end_epoch, finish, macro_f1, read_columns, resume, save_latest,
                                      start_rank)

log = logging.getLogger(__name__)


def _features(files: list[str], rank: int, world: int, reader: str) -> tuple[np.ndarray, np.ndarray]:
    cols = read_columns(files, rank, world, reader, ["features", "sentiment"])
    x = np.stack([np.frombuffer(b, dtype="<f4") for b in cols["features"]]) if cols["features"] else np.zeros((0, 0))
    return x.astype(np.float32), np.asarray(cols["sentiment"], dtype=np.int64)


def build_joint_model(spec: dict[str, Any]) -> JointTopicModel:
    m = spec["model"]
    return JointTopicModel(spec["dim"], m["hidden"], m["latent"], m["topics"], spec["num_classes"], m["dropout"],
                           m["alpha"])


def train_joint_topic(spec: dict[str, Any]) -> dict[str, Any]:
    """Train the joint model as one rank of ``spec['comm']``; the same result dict on every rank (as
    :func:`~reviewlake.training.loop.train_multitask`)."""
    comm, latest, best_path = start_rank(spec)
    m = spec["model"]

    x_train, y_train = _features(spec["files"]["train"], comm.rank, comm.world, spec["reader"])
    x_val, y_val = _features(spec["files"]["validation"], comm.rank, comm.world, spec["reader"])
    steps_per_epoch = comm.min(len(x_train) // m["batch_size"])
    if steps_per_epoch == 0:
        raise ValueError(f"{len(x_train)} training rows per process is less than one batch of {m['batch_size']}")
    epochs = m["pretrain_epochs"] + m["epochs"]
    planned = steps_per_epoch * epochs
    if spec.get("max_steps"):
        planned = min(planned, spec["max_steps"])

    model = build_joint_model(spec).to(comm.device)
    optimizer: torch.optim.Optimizer = torch.optim.AdamW(model.parameters(), lr=m["lr"], weight_decay=m["weight_decay"])
    class_weights = torch.tensor(spec["class_weights"], dtype=torch.float32, device=comm.device)
    state: dict[str, Any] = {"step": 0, "epoch": 0, "batch": 0, "best": -1.0, "bad_epochs": 0, "history": [],
                             "centroids_set": False}
    state, resumed_from = resume(spec, comm, latest, model, optimizer, state)
    comm.broadcast(model, optimizer)
    trainer, opt = comm.trainer(model, optimizer)  # every parameter trains in every step: wrap once
    x_all = torch.from_numpy(x_train).to(comm.device)
    target: torch.Tensor | None = None

    def checkpoint() -> None:
        save_latest(spec, comm, latest, model, opt, state)

    def latent_and_q(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        model.eval()
        with torch.no_grad():
            z, _, q, logits = model(x)
        model.train()
        return z, q, logits

    def refresh_target() -> torch.Tensor:
        _, q, _ = latent_and_q(x_all)
        frequency = comm.sum(q.sum(0).cpu()).to(comm.device)  # soft topic counts over every rank's rows
        return target_distribution(q, frequency)

    def evaluate() -> float:
        k = spec["num_classes"]
        confusion = np.zeros((k, k), dtype=np.int64)
        if len(x_val):
            _, _, logits = latent_and_q(torch.from_numpy(x_val).to(comm.device))
            pred = logits.argmax(1).cpu().numpy()
            keep = y_val >= 0
            np.add.at(confusion, (y_val[keep], pred[keep]), 1)
        return macro_f1(comm.sum(torch.from_numpy(confusion)).numpy())

    clock = time.perf_counter()
    busy = 0.0
    while state["epoch"] < epochs and state["step"] < planned:
        clustering = state["epoch"] >= m["pretrain_epochs"]
        if clustering and not state["centroids_set"]:
            z, _, _ = latent_and_q(x_all)
            centroids = torch.from_numpy(kmeans(z.cpu().numpy(), m["topics"], spec["seed"])) if comm.rank == 0 \
                else torch.zeros_like(model.centroids.detach().cpu())
            with torch.no_grad():
                model.centroids.copy_(comm.broadcast_tensor(centroids).to(comm.device))
            state["centroids_set"], state["best"], state["bad_epochs"] = True, -1.0, 0
            if comm.rank == 0:
                log.info("centroids of %d topics set by k-means on the latent of %d rows", m["topics"], len(x_all))
        if clustering and target is None:
            target = refresh_target()
        started = time.perf_counter()
        for rows in batch_rows(np.zeros(len(x_train), dtype=np.int64), m["batch_size"], steps_per_epoch,
                               spec["seed"] + state["epoch"], start=state["batch"]):
            if clustering and state["step"] % m["target_every"] == 0:
                target = refresh_target()
            index = torch.from_numpy(rows).to(comm.device)
            x = x_all[index]
            outputs = trainer(x)
            p = target[index] if clustering and target is not None else outputs[2].detach()
            loss, parts = joint_loss(x, outputs, p, torch.from_numpy(y_train[rows]).to(comm.device),
                                     m["gamma"] if clustering else 0.0, m["sentiment_weight"], class_weights)
            opt.zero_grad()
            loss.backward()
            opt.step()
            state["step"] += 1
            state["batch"] += 1
            if comm.rank == 0 and state["step"] % 20 == 0:
                log.info("step %d/%d epoch %d %s", state["step"], planned, state["epoch"],
                         " ".join(f"{k} {v:.4f}" for k, v in parts.items()))
            if state["step"] % spec["checkpoint_every"] == 0:
                checkpoint()
            if state["step"] >= planned:
                break
        busy += time.perf_counter() - started
        if state["batch"] < steps_per_epoch and state["step"] >= planned:
            break
        f1 = evaluate()
        # The best model is chosen among the clustering epochs only: before them there are no topics.
        end_epoch(comm, state, model, best_path, f1, clustering,
                  {"val_macro_f1": f1, "phase": "clustering" if clustering else "pretrain", **parts}, "macro-F1")
        checkpoint()
        if clustering and state["bad_epochs"] >= m["patience"]:
            break
    finish(comm, state, model, best_path)
    return {"best_val_macro_f1": state["best"], "best_state": str(best_path), "steps": state["step"],
            "planned_steps": planned, "resumed_from_step": resumed_from, "history": state["history"],
            "world_size": comm.world, "steps_per_epoch": steps_per_epoch, "centroids_set": state["centroids_set"],
            "samples": (state["step"] - resumed_from) * m["batch_size"] * comm.world, "train_seconds": busy,
            "seconds": time.perf_counter() - clock}


def _frame(snapshot: Snapshot, split: str, limit: int) -> pd.DataFrame:
    files = snapshot.files[split]
    columns = ["review_id", "source", "category", "text_clean", "features", "sentiment"]
    frame = pq.read_table(files, columns=columns).to_pandas() if files else pd.DataFrame(columns=columns)
    return frame.sort_values("review_id").head(limit).reset_index(drop=True)


def _vectors(frame: pd.DataFrame) -> np.ndarray:
    return np.stack([np.frombuffer(b, dtype="<f4") for b in frame["features"]]) if len(frame) else np.zeros((0, 1))


def topic_quality(frame: pd.DataFrame, scores: dict[str, np.ndarray], latent: np.ndarray, documents: dict[str, list[set[str]]],
                  term_lists: list[list[str]], seed: int) -> list[tuple[str, str, float]]:
    """Per source: silhouette of the topics on the latent (up to 5,000 rows), NPMI coherence of the
    topics' terms in that source's reviews, and where the source has product categories, NMI and ARI
    of the topics against them. ``frame`` holds ``source`` and ``category`` in the row order of
    ``scores`` and ``latent``."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score

    from reviewlake.topics import npmi

    rows: list[tuple[str, str, float]] = []
    topic = scores["topic"]
    for source in sorted(set(frame["source"])):
        mine = (frame["source"] == source).to_numpy()
        rows.append((source, "topic_rows", float(mine.sum())))
        if len(set(topic[mine])) > 1 and mine.sum() > len(set(topic[mine])):
            rows.append((source, "topic_silhouette", float(silhouette_score(
                latent[mine], topic[mine], sample_size=min(5000, int(mine.sum())), random_state=seed))))
        coherence = [v for v in npmi(documents.get(source, []), term_lists) if v is not None]
        if coherence:
            rows.append((source, "topic_npmi", float(np.mean(coherence))))
        category = frame["category"].to_numpy()
        known = mine & pd.notna(category)
        if known.sum() > 1 and len(set(category[known])) > 1:
            rows.append((source, "topic_nmi_category", float(normalized_mutual_info_score(category[known],
                                                                                          topic[known]))))
            rows.append((source, "topic_ari_category", float(adjusted_rand_score(category[known], topic[known]))))
    return rows


def train_joint_topic_stage(spark: SparkSession, cfg: Config, request: Any) -> Any:
    """Embed, train, describe and measure the topics, evaluate and register the joint model."""
    import mlflow

    from reviewlake.evaluate import Predictions, confusion_png, metrics, write_metrics
    from reviewlake.models.multitask import load_encoder, load_tokenizer
    from reviewlake.predict import SENTIMENT_NAMES, JointTopicPyfunc, joint_scores, save_joint_topic_dir
    from reviewlake.topics import describe_topics, diversity, npmi, topic_documents, write_topics
    from reviewlake.training.data import write_feature_snapshot
    from reviewlake.training.report import format_topic_table, train_fingerprint
    from reviewlake.training.stage import (TrainReport, _macro_f1_all, _snapshot_meta, champion_scorer, launch,
                                           prepare_run)

    clock = time.perf_counter()
    backends.preflight(spark, request)
    settings = cfg.train.joint_topic
    if request.epochs is not None:
        settings = settings.model_copy(update={"epochs": request.epochs})

    def build(run_id: str, run_dir: Path) -> tuple[Snapshot, dict[str, Any]]:
        snapshot = write_feature_snapshot(spark, cfg, run_dir / "data", settings.encoder, settings.max_length,
                                          settings.embed_batch_size, request.max_rows or cfg.train.max_rows,
                                          request.sources or cfg.train.sources, parts=max(2, request.num_proc) * 2)
        dim = len(pq.read_table(snapshot.files["train"][:1] or snapshot.files["train"], columns=["features"])
                  .column("features")[0].as_py()) // 4
        return snapshot, {
            "run_id": run_id, "model": settings.model_dump(), "num_classes": snapshot.num_classes, "dim": dim,
            "class_weights": snapshot.class_weights, "files": snapshot.files, "checkpoint_dir": str(run_dir),
            "torch_threads": cfg.train.torch_threads, "checkpoint_every": cfg.train.checkpoint_every,
            "seed": cfg.train.seed, "use_gpu": request.use_gpu, "max_steps": request.max_steps, "resume": False}

    run_id, run_dir, snapshot, spec = prepare_run(cfg, request, build)
    result = launch(spark, request, train_joint_topic, spec, run_id)

    model = build_joint_model(spec)
    model.load_state_dict(torch.load(result["best_state"], map_location="cpu")["model"])
    classes = SENTIMENT_NAMES[snapshot.num_classes]
    meta = {"model_type": "joint-topic", "num_classes": snapshot.num_classes, "label": cfg.train.label,
            "dim": spec["dim"], "hidden": settings.hidden, "latent": settings.latent, "topics": settings.topics,
            "alpha": settings.alpha, "encoder": settings.encoder, "max_length": settings.max_length,
            "cleaning": cfg.preprocess.cleaning.model_dump()}
    model.eval()

    def predictions(frame: pd.DataFrame) -> Any:
        # from the snapshot's embeddings: the vectors the predictor computes from the text
        s = joint_scores(model, _vectors(frame))
        return Predictions(source=frame["source"].to_numpy(), y_true=frame["sentiment"].to_numpy().astype(int),
                           proba=s["proba"], rating_true=np.full(len(frame), np.nan))

    frames = {split: _frame(snapshot, split, cfg.train.eval_rows) for split in ("validation", "test")}
    preds = {split: predictions(frame) for split, frame in frames.items()}
    val_rows, test_rows = metrics(preds["validation"], classes), metrics(preds["test"], classes)
    val_f1 = _macro_f1_all(preds["validation"])

    # Topics: training rows assigned by the model, described and measured in Spark.
    train_frame = _frame(snapshot, "train", settings.topic_rows)
    train_scores = joint_scores(model, _vectors(train_frame))
    latent = train_scores["z"]
    assigned = spark.createDataFrame(pd.DataFrame({
        "review_id": train_frame["review_id"], "source": train_frame["source"],
        "text_clean": train_frame["text_clean"], "sentiment": train_frame["sentiment"].astype(int),
        "topic": train_scores["topic"].astype(int), "topic_prob": train_scores["topic_prob"].astype(float)}))
    topics = describe_topics(assigned, settings.top_terms, settings.examples, classes)
    term_lists = [t.terms for t in topics]
    documents: dict[str, list[set[str]]] = {}
    for source, doc in topic_documents(assigned, term_lists):
        documents.setdefault(source, []).append(doc)
    coherence = npmi([d for docs in documents.values() for d in docs], term_lists)
    topics = [replace(t, npmi=c) for t, c in zip(topics, coherence)]
    topic_rows = topic_quality(train_frame, train_scores, latent, documents, term_lists, cfg.train.seed)
    topic_diversity = diversity(term_lists)

    name = registry.model_name(cfg, request.model, request.name)
    encoder = load_encoder(settings.encoder)
    model_dir = save_joint_topic_dir(model, encoder, load_tokenizer(settings.encoder), meta,
                                     [asdict(t) for t in topics], run_dir / "model")
    client = registry.configure(cfg)
    with mlflow.start_run(run_name=f"{request.model} {run_id}") as run:
        mlflow.log_params({"model_type": request.model, "backend": request.backend, "num_proc": request.num_proc,
                           "encoder": settings.encoder, "silver_version": snapshot.silver_version,
                           "label": cfg.train.label, "checkpoint_run": run_id,
                           **{f"joint_topic.{k}": v for k, v in settings.model_dump().items()}})
        mlflow.log_dict({"train": cfg.train.model_dump(mode="json"), "snapshot": _snapshot_meta(snapshot),
                         "result": result, "topics": [asdict(t) for t in topics]}, "config.json")
        for h in result["history"]:
            mlflow.log_metric("val_macro_f1_epoch", h["val_macro_f1"], step=h["step"])
        registry.log_figures({"validation": val_rows, "test": test_rows, "train": topic_rows})
        mlflow.log_metric("topic_diversity", topic_diversity)
        plots = run_dir / "plots"
        for split in ("validation", "test"):
            mlflow.log_artifact(str(confusion_png(preds[split], classes, plots / f"confusion_{split}.png",
                                                  f"{name} {split}")), "plots")
        mlflow.log_artifact(str(topic_sentiment_png(topics, plots / "topic_sentiment.png", name)), "plots")
        mlflow.pyfunc.log_model(name="model", python_model=JointTopicPyfunc(), artifacts={"model": str(model_dir)},
                                code_paths=registry.code_paths(),
                                pip_requirements=["torch==2.9.1", "transformers==5.23.0", "pandas", "numpy"])
        tags = {"model_type": request.model, "silver_version": str(snapshot.silver_version),
                "sources": ",".join(sorted({s for v in snapshot.rows_by_source.values() for s in v})),
                "rows": json.dumps(snapshot.rows_by_source), "encoder": settings.encoder,
                "backend": request.backend, "train_config": train_fingerprint(cfg, request.model), "topics": str(settings.topics)}
        registered = registry.register(cfg, client, name, run.info.run_id, "model", val_f1, snapshot.validation_hash,
                                       tags, request.promote, champion_scorer(cfg, name, snapshot, classes))
    write_metrics(spark, cfg, name, registered.version, registered.run_id,
                  {"test": test_rows, "validation": val_rows, "train": topic_rows})
    write_topics(spark, cfg, name, registered.version, topics)
    shutil.rmtree(run_dir / "data", ignore_errors=True)
    return TrainReport(run_id=run_id, model=request.model, name=name, version=registered.version,
                         promoted=registered.promoted, why=registered.why, silver_version=snapshot.silver_version,
                         rows=snapshot.rows, val_macro_f1=val_f1, test_metrics=test_rows, steps=result["steps"],
                         resumed_from_step=result["resumed_from_step"], seconds=time.perf_counter() - clock,
                         details=format_topic_table([{**asdict(t), **{f"share_{k}": v for k, v in t.shares.items()}}
                                                     for t in topics], topic_diversity))


def topic_sentiment_png(topics: list[Any], path: Path, title: str) -> Path:
    """The seed's bar chart: share negative / neutral / positive of each topic's labelled reviews."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 0.6 * len(topics) + 1.6))
    ax = fig.subplots()
    left = np.zeros(len(topics))
    for name, color in (("negative", "#c0392b"), ("neutral", "#bdc3c7"), ("positive", "#27ae60")):
        share = np.array([t.shares.get(name, 0.0) for t in topics])
        if share.any():
            ax.barh([t.label for t in topics], share, left=left, color=color, label=name)
            left += share
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the topic's labelled training reviews")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"{title}: sentiment per topic")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    return path
