"""The joint sentiment-topic family: encoder embeddings -> autoencoder, Deep Embedded Clustering, sentiment.

An MLP encodes a review's (frozen, pretrained) sentence embedding into a small latent space and a
decoder reconstructs the embedding from it. Two heads sit on the latent: Deep Embedded Clustering
(Xie et al. 2016: k centroids, a Student-t soft assignment ``q``, trained towards the sharpened
target ``p = q^2 / f`` normalised per row, with ``f`` the soft topic frequencies) and a sentiment
classifier. One loss trains them together::

    L = L_rec + gamma * KL(p || q) + lambda * L_sent

Every term is computed on every step (``gamma`` is 0 before the centroids are set), so each
parameter takes part in each step, as DDP and Horovod want.

The stage embeds silver's text with the frozen encoder once (``tables.embeddings``, reused across
runs), writes the run's snapshot of embeddings and labels, and runs :func:`train_joint_topic` through
the same backends as the multi-task model: the autoencoder and sentiment head for
``pretrain_epochs``, then the centroids by k-means on the latent (rank 0's, broadcast), then the
clustering term too, recomputing the target distribution every ``target_every`` steps from every
rank's soft topic counts; early-stopped on validation macro-F1 during the clustering epochs. After
training it assigns training rows to topics, describes them in Spark (c-TF-IDF terms, labels,
examples, sentiment shares), measures them (silhouette, NPMI coherence, diversity, NMI / ARI against
the product category where a source has one) and registers the model with its topics.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from reviewlake.embeddings import sentence_embeddings
from reviewlake.families.base import (SENTIMENT_COLUMNS, SENTIMENT_NAMES, TOPIC_COLUMNS, Family, ModelFolderPyfunc,
                                      read_meta, requirements, sentiment_frame, text_mask)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from reviewlake.config import Config
    from reviewlake.training.data import Snapshot
    from reviewlake.training.spec import RunSpec
    from reviewlake.training.stage import TrainReport, TrainRequest

log = logging.getLogger(__name__)

PACKAGES = ("torch", "transformers", "tokenizers", "pandas", "numpy")
class JointTopicModel(nn.Module):
    """``forward(x)`` returns (latent z, reconstruction, soft assignment q, sentiment logits)."""

    def __init__(self, dim: int, hidden: int, latent: int, topics: int, num_classes: int, dropout: float = 0.2,
                 alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha
        self.encoder = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, latent))
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        self.centroids = nn.Parameter(torch.zeros(topics, latent))
        self.sentiment = nn.Sequential(nn.Dropout(dropout), nn.Linear(latent, hidden // 2), nn.ReLU(),
                                       nn.Dropout(dropout), nn.Linear(hidden // 2, num_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        z = self.encoder(x)
        return z, self.decoder(z), soft_assignment(z, self.centroids, self.alpha), self.sentiment(z)


def soft_assignment(z: torch.Tensor, centroids: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Student-t kernel between each latent row and each centroid, normalised over the centroids."""
    distance = torch.cdist(z, centroids).pow(2)
    q = (1.0 + distance / alpha).pow(-(alpha + 1.0) / 2.0)
    return q / q.sum(1, keepdim=True)


def target_distribution(q: torch.Tensor, frequency: torch.Tensor) -> torch.Tensor:
    """DEC's auxiliary target: ``q^2 / f`` normalised per row, ``f`` the soft count of each topic (over
    every rank's rows when trained distributed)."""
    p = q.pow(2) / frequency.clamp(min=1e-12)
    return p / p.sum(1, keepdim=True)


def joint_loss(x: torch.Tensor, outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
               p: torch.Tensor, sentiment: torch.Tensor, gamma: float, sentiment_weight: float,
               class_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The combined loss and its parts; rows without a sentiment label (-1) add no sentiment loss."""
    _, recon, q, logits = outputs
    # Squared error per row (summed over the dimensions): on L2-normalised embeddings a per-value
    # mean is ~1/dim as large, and the sentiment term alone would shape the latent space.
    l_rec = (recon - x).pow(2).sum(1).mean()
    l_kl = F.kl_div(q.clamp(min=1e-12).log(), p, reduction="batchmean")
    from reviewlake.training.loop import masked_cross_entropy

    l_sent = masked_cross_entropy(logits, sentiment, class_weights)
    total = l_rec + gamma * l_kl + sentiment_weight * l_sent
    return total, {"loss": total.item(), "loss_rec": l_rec.item(), "loss_kl": l_kl.item(),
                   "loss_sentiment": l_sent.item()}


def kmeans(points: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k-means++ centroids of ``points`` (scikit-learn, 10 starts): DEC's initial centroids."""
    from sklearn.cluster import KMeans

    if len(points) < k:
        raise ValueError(f"{len(points)} rows cannot seed {k} topics; lower train.joint_topic.topics")
    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit(points).cluster_centers_.astype(np.float32)


# -----------------------------------------------------------------------------------------------
# Training: one rank


def _features(files: list[str], rank: int, world: int, reader: str) -> tuple[np.ndarray, np.ndarray]:
    from reviewlake.training.loop import read_columns

    cols = read_columns(files, rank, world, reader, ["features", "sentiment"])
    x = np.stack([np.frombuffer(b, dtype="<f4") for b in cols["features"]]) if cols["features"] else np.zeros((0, 0))
    return x.astype(np.float32), np.asarray(cols["sentiment"], dtype=np.int64)


def build_joint_model(spec: RunSpec) -> JointTopicModel:
    m = spec.model
    return JointTopicModel(spec.extra["dim"], m["hidden"], m["latent"], m["topics"], spec.num_classes, m["dropout"],
                           m["alpha"])


def train_joint_topic(spec: RunSpec) -> dict[str, Any]:
    """Train the joint model as one rank of ``spec.comm``; the same result dict on every rank (as
    :func:`~reviewlake.families.multitask.train_multitask`)."""
    from reviewlake.metrics import macro_f1
    from reviewlake.training.loop import batch_rows, end_epoch, finish, resume, save_latest, start_rank

    comm, latest, best_path = start_rank(spec)
    m = spec.model

    x_train, y_train = _features(spec.files["train"], comm.rank, comm.world, spec.reader)
    x_val, y_val = _features(spec.files["validation"], comm.rank, comm.world, spec.reader)
    steps_per_epoch = comm.min(len(x_train) // m["batch_size"])
    if steps_per_epoch == 0:
        raise ValueError(f"{len(x_train)} training rows per process is less than one batch of {m['batch_size']}")
    epochs = m["pretrain_epochs"] + m["epochs"]
    planned = steps_per_epoch * epochs
    if spec.max_steps:
        planned = min(planned, spec.max_steps)

    model = build_joint_model(spec).to(comm.device)
    optimizer: torch.optim.Optimizer = torch.optim.AdamW(model.parameters(), lr=m["lr"], weight_decay=m["weight_decay"])
    class_weights = torch.tensor(spec.class_weights, dtype=torch.float32, device=comm.device)
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
        k = spec.num_classes
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
            centroids = torch.from_numpy(kmeans(z.cpu().numpy(), m["topics"], spec.seed)) if comm.rank == 0 \
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
                               spec.seed + state["epoch"], start=state["batch"]):
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
            if state["step"] % spec.checkpoint_every == 0:
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


# -----------------------------------------------------------------------------------------------
# Prediction


def save_joint_topic_dir(model: Any, encoder: Any, tokenizer: Any, meta: dict[str, Any], topics: list[dict[str, Any]],
                         out: Path) -> Path:
    """Write a trained joint sentiment-topic model with its (frozen) encoder and readable topics."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    if meta.get("quantized") == "bitlinear":  # ternary weights packed four to a byte (freezes the model)
        from reviewlake.quantization import pack

        torch.save(pack(model), out / "model.pt")
    else:
        torch.save(model.state_dict(), out / "model.pt")
    encoder.save_pretrained(out / "encoder")
    tokenizer.save_pretrained(out / "encoder")
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    (out / "topics.json").write_text(json.dumps(topics, indent=2))
    return out


def joint_scores(model: Any, vectors: np.ndarray, device: str = "cpu") -> dict[str, np.ndarray]:
    """What a :class:`JointTopicModel` (in eval mode) makes of embeddings:
    class probabilities ``proba``, the latent ``z``, soft topic assignment ``q``, ``topic`` and ``topic_prob``."""
    import torch

    with torch.inference_mode():
        z, _, q, logits = model(torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32)).to(device))
        proba = torch.softmax(logits.float(), 1).cpu().numpy()
        q_np = q.float().cpu().numpy()
    return {"proba": proba, "z": z.float().cpu().numpy(), "q": q_np, "topic": q_np.argmax(1),
            "topic_prob": q_np.max(1)}


class JointTopicPredictor:
    """Scores texts with a saved joint sentiment-topic model: sentiment, topic id, its probability and label."""

    def __init__(self, model_dir: Path, device: str = "cpu", threads: int | None = None) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        if threads:
            torch.set_num_threads(threads)
        self.meta = read_meta(model_dir)
        self.topics = {int(t["topic_id"]): t for t in json.loads((model_dir / "topics.json").read_text())}
        m = self.meta
        self.encoder = AutoModel.from_pretrained(model_dir / "encoder", local_files_only=True).to(device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir / "encoder", local_files_only=True)
        self.model = JointTopicModel(m["dim"], m["hidden"], m["latent"], m["topics"], m["num_classes"],
                                     alpha=m["alpha"])
        self.model.load_state_dict(torch.load(model_dir / "model.pt", map_location="cpu"))
        self.device = device
        self.model.to(device).eval()

    def scores_from_embeddings(self, vectors: np.ndarray) -> dict[str, np.ndarray]:
        return joint_scores(self.model, vectors, self.device)

    def scores(self, texts: list[str], batch_size: int = 64) -> dict[str, np.ndarray]:
        vectors = sentence_embeddings(self.encoder, self.tokenizer, texts, self.meta["max_length"], batch_size,
                                      self.device)
        return self.scores_from_embeddings(vectors)

    def predict_frame(self, texts: pd.Series, vectors: pd.Series | None = None) -> pd.DataFrame:
        """As the multi-task predictor's ``predict_frame`` (no rating or aspects), plus ``topic_id``,
        ``topic_prob`` and ``topic_label``.

        ``vectors`` (same index as ``texts``) are the texts' embeddings where already known (batch
        scoring reads them from ``tables.embeddings``); None entries are computed from the text.
        """
        def score(batch: list[str]) -> dict[str, np.ndarray]:
            if vectors is None:
                return self.scores(batch)
            given = list(vectors[text_mask(texts)])  # the rows sentiment_frame scores
            missing = [i for i, v in enumerate(given) if v is None or not hasattr(v, "__len__")]
            if missing:
                fresh = sentence_embeddings(self.encoder, self.tokenizer, [batch[i] for i in missing],
                                            self.meta["max_length"], 64, self.device)
                for row, i in enumerate(missing):
                    given[i] = fresh[row]
            return self.scores_from_embeddings(np.stack(given).astype(np.float32))

        out, ok, s = sentiment_frame(texts, self.meta["num_classes"], score)
        out["topic_id"] = pd.Series(pd.NA, index=texts.index, dtype="Int64")
        out["topic_prob"] = np.nan
        out["topic_label"] = None
        if s is not None:
            out.loc[ok, "topic_id"] = s["topic"].astype(int)
            out.loc[ok, "topic_prob"] = s["topic_prob"]
            out.loc[ok, "topic_label"] = [self.topics.get(int(t), {}).get("label", f"topic {t}") for t in s["topic"]]
        return out


class JointTopicPyfunc(ModelFolderPyfunc):
    """A joint sentiment-topic model folder; an ``embedding`` column, where given, saves encoding the text."""

    predictor_class = JointTopicPredictor

    def predict_input(self, model_input: pd.DataFrame) -> pd.DataFrame:
        return self.predictor.predict_frame(model_input["text"], model_input.get("embedding"))


# ---------------------------------------------------------------------------------------------------
# The train stage


def _frame(snapshot: "Snapshot", split: str, limit: int) -> pd.DataFrame:
    import pyarrow.parquet as pq

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


def train_stage(spark: "SparkSession", cfg: "Config", request: "TrainRequest") -> "TrainReport":
    """Embed, train, describe and measure the topics, evaluate and register the joint model."""
    import pyarrow.parquet as pq

    from reviewlake import registry
    from reviewlake.encoders import load_encoder, load_tokenizer
    from reviewlake.evaluate import Predictions, metrics
    from reviewlake.families import train_fingerprint
    from reviewlake.topics import describe_topics, diversity, format_topic_table, npmi, topic_documents, write_topics
    from reviewlake.training import stage
    from reviewlake.training.data import Snapshot, write_feature_snapshot

    clock = time.perf_counter()
    stage.preflight(spark, request)
    settings = cfg.train.joint_topic
    if request.epochs is not None:
        settings = settings.model_copy(update={"epochs": request.epochs})

    def build(run_id: str, run_dir: Path) -> tuple[Snapshot, "RunSpec"]:
        snapshot = write_feature_snapshot(spark, cfg, run_dir / "data", settings.encoder, settings.max_length,
                                          settings.embed_batch_size, request.max_rows or cfg.train.max_rows,
                                          request.sources or cfg.train.sources, parts=max(2, request.num_proc) * 2)
        dim = len(pq.read_table(snapshot.files["train"][:1] or snapshot.files["train"], columns=["features"])
                  .column("features")[0].as_py()) // 4
        return snapshot, stage.run_spec(cfg, snapshot, run_id, run_dir, settings.model_dump(), request.use_gpu,
                                        request.max_steps, dim=dim)

    run_id, run_dir, snapshot, spec = stage.prepare_run(cfg, request, build)
    result = stage.launch(spark, request, train_joint_topic, spec, run_id)

    model = build_joint_model(spec)
    model.load_state_dict(torch.load(result["best_state"], map_location="cpu")["model"])
    classes = SENTIMENT_NAMES[snapshot.num_classes]
    meta = {"model_type": "joint-topic", "num_classes": snapshot.num_classes, "label": cfg.train.label,
            "dim": spec.extra["dim"], "hidden": settings.hidden, "latent": settings.latent, "topics": settings.topics,
            "alpha": settings.alpha, "encoder": settings.encoder, "max_length": settings.max_length,
            "cleaning": cfg.preprocess.cleaning.model_dump()}
    model.eval()

    def predictions(frame: pd.DataFrame) -> Predictions:
        # from the snapshot's embeddings: the vectors the predictor computes from the text
        s = joint_scores(model, _vectors(frame))
        return Predictions(source=frame["source"].to_numpy(), y_true=frame["sentiment"].to_numpy().astype(int),
                           proba=s["proba"], rating_true=np.full(len(frame), np.nan))

    frames = {split: _frame(snapshot, split, cfg.train.eval_rows) for split in ("validation", "test")}
    preds = {split: predictions(frame) for split, frame in frames.items()}
    figures = {split: metrics(preds[split], classes) for split in ("validation", "test")}
    val_f1 = stage.validation_f1(preds["validation"])

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
    figures["train"] = topic_quality(train_frame, train_scores, latent, documents, term_lists, cfg.train.seed)
    topic_diversity = diversity(term_lists)

    name = registry.model_name(cfg, request.model, request.name)
    model_dir = save_joint_topic_dir(model, load_encoder(settings.encoder), load_tokenizer(settings.encoder), meta,
                                     [asdict(t) for t in topics], run_dir / "model")
    record = stage.RunRecord(
        params={"backend": request.backend, "num_proc": request.num_proc, "encoder": settings.encoder,
                "silver_version": snapshot.silver_version, "label": cfg.train.label,
                **{f"joint_topic.{k}": v for k, v in settings.model_dump().items()}},
        tags={"silver_version": str(snapshot.silver_version),
              "sources": ",".join(sorted({s for v in snapshot.rows_by_source.values() for s in v})),
              "rows": json.dumps(snapshot.rows_by_source), "encoder": settings.encoder, "backend": request.backend,
              "train_config": train_fingerprint(cfg, request.model), "topics": str(settings.topics)},
        figures=figures, val_f1=val_f1, val_hash=snapshot.validation_hash, python_model=JointTopicPyfunc(),
        artifacts={"model": str(model_dir)}, requirements=requirements(*PACKAGES),
        metadata={"cleaning": meta["cleaning"]}, classes=classes, predictions=preds,
        config={"train": cfg.train.model_dump(mode="json"), "snapshot": stage.snapshot_meta(snapshot),
                "result": result, "topics": [asdict(t) for t in topics]},
        history=result["history"], metrics={"topic_diversity": topic_diversity},
        plots=[topic_sentiment_png(topics, run_dir / "plots" / "topic_sentiment.png", name)])
    registered = stage.register_run(spark, cfg, request, run_id, run_dir, record,
                                    stage.champion_scorer(cfg, name, stage.snapshot_validation(cfg, snapshot), classes))
    write_topics(spark, cfg, name, registered.version, topics)
    shutil.rmtree(run_dir / "data", ignore_errors=True)
    table = format_topic_table([{**asdict(t), **{f"share_{k}": v for k, v in t.shares.items()}} for t in topics],
                               topic_diversity)
    return stage.report(request, run_id, registered, snapshot.silver_version, snapshot.rows, val_f1,
                        figures["test"], time.perf_counter() - clock, result, table)


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


FAMILIES = (Family("joint-topic", train_stage, section="joint_topic", columns=SENTIMENT_COLUMNS + TOPIC_COLUMNS,
                   uses_embeddings=True),)
