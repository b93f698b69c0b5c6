"""The BiLSTM family (the LSTM seeds): its own vocabulary, an embedding, stacked bidirectional LSTMs, softmax.

Words are lower-cased runs of letters, digits and apostrophes (:func:`words`, the same rule as the
Spark ``RegexTokenizer`` that builds the vocabulary from the train split). Ids: 0 pads, 1 is a word
outside the vocabulary, the vocabulary's words follow by frequency. The seeds: 166 tokens (3.6M
Amazon polarity) or 100 (14M), embedding 50, dropout 0.2, BiLSTM 48 / 24 / 12, Adam at 0.01,
batch 256, early stopping on validation recall with patience 2.

The stage builds the vocabulary from the train split in Spark, writes each row's word ids into the
run's snapshot (the layout of the multi-task token snapshot, so the same readers serve it), and runs
:func:`train_bilstm` through either backend: Adam (gradients clipped), macro recall on validation
after each epoch, the best kept, ``patience`` epochs without a better one end it, checkpoints as the
other loops.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from reviewlake.families.base import SENTIMENT_NAMES, Family, ModelFolderPyfunc, read_meta, requirements, sentiment_frame

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from reviewlake.config import Config
    from reviewlake.training.data import Snapshot
    from reviewlake.training.spec import RunSpec
    from reviewlake.training.stage import TrainReport, TrainRequest

log = logging.getLogger(__name__)

PACKAGES = ("torch", "pandas", "numpy")
PAD, UNK = 0, 1
WORD_GAPS = r"[^a-z0-9']+"   # what separates words (RegexTokenizer's pattern, gaps=True)


def words(text: str | None) -> list[str]:
    """The words of ``text`` as the vocabulary counts them."""
    return [w for w in re.split(WORD_GAPS, (text or "").lower()) if w]


def encode_words(tokens: list[str], index: dict[str, int], max_length: int) -> list[int]:
    """Word ids of the first ``max_length`` words (``UNK`` outside the vocabulary)."""
    return [index.get(w, UNK) for w in tokens[:max_length]] or [UNK]


class BiLSTMClassifier(nn.Module):
    """Embedding -> dropout -> stacked bidirectional LSTMs -> the last layer's final states -> logits."""

    def __init__(self, vocab_size: int, embedding: int, hidden: list[int], num_classes: int,
                 dropout: float = 0.2) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding, padding_idx=PAD)
        self.dropout = nn.Dropout(dropout)
        sizes = [embedding] + [2 * h for h in hidden[:-1]]
        self.layers = nn.ModuleList(nn.LSTM(i, h, batch_first=True, bidirectional=True) for i, h in zip(sizes, hidden))
        self.out = nn.Linear(2 * hidden[-1], num_classes)

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.embedding(input_ids))
        lengths = lengths.clamp(min=1).cpu()
        final = None
        for i, lstm in enumerate(self.layers):
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            out, (h, _) = lstm(packed)
            final = torch.cat([h[0], h[1]], dim=1)  # forward and backward final states
            if i < len(self.layers) - 1:
                x, _ = pad_packed_sequence(out, batch_first=True, total_length=input_ids.shape[1])
                x = self.dropout(x)
        assert final is not None
        return self.out(self.dropout(final))


def build_bilstm(spec: RunSpec) -> BiLSTMClassifier:
    m = spec.model
    return BiLSTMClassifier(spec.extra["vocab_size"], m["embedding"], list(m["hidden"]), spec.num_classes, m["dropout"])


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


def train_bilstm(spec: RunSpec) -> dict[str, Any]:
    """Train the BiLSTM as one rank of ``spec.comm``; the same result dict on every rank."""
    from reviewlake.training.loop import (batch_rows, end_epoch, finish, masked_cross_entropy, optimizer_step,
                                          read_shard, resume, save_latest, start_rank)

    comm, latest, best_path = start_rank(spec)
    m = spec.model
    train = read_shard(spec.files["train"], comm.rank, comm.world, spec.reader)
    validation = read_shard(spec.files["validation"], comm.rank, comm.world, spec.reader)
    steps_per_epoch = comm.min(len(train) // m["batch_size"])
    if steps_per_epoch == 0:
        raise ValueError(f"{len(train)} training rows per process is less than one batch of {m['batch_size']}")
    planned = steps_per_epoch * m["epochs"]
    if spec.max_steps:
        planned = min(planned, spec.max_steps)
    model = build_bilstm(spec).to(comm.device)
    optimizer: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=m["lr"])
    class_weights = torch.tensor(spec.class_weights, dtype=torch.float32, device=comm.device)
    state: dict[str, Any] = {"step": 0, "epoch": 0, "batch": 0, "best": -1.0, "bad_epochs": 0, "history": []}
    state, resumed_from = resume(spec, comm, latest, model, optimizer, state)
    comm.broadcast(model, optimizer)
    trainer, opt = comm.trainer(model, optimizer)  # every parameter trains in every step: wrap once

    def checkpoint() -> None:
        save_latest(spec, comm, latest, model, opt, state)

    def evaluate() -> float:
        model.eval()
        k = spec.num_classes
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
        for rows in batch_rows(lengths_all, m["batch_size"], steps_per_epoch, spec.seed + state["epoch"],
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
            if state["step"] % spec.checkpoint_every == 0:
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


class BilstmPredictor:
    """Scores texts with a saved BiLSTM (its vocabulary in ``vocab.json``): sentiment only."""

    def __init__(self, model_dir: Path, device: str = "cpu", threads: int | None = None) -> None:
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.model_dir = model_dir
        self.meta = read_meta(model_dir)
        self.index = {w: i + 2 for i, w in enumerate(json.loads((model_dir / "vocab.json").read_text()))}
        m = self.meta
        self.model = BiLSTMClassifier(m["vocab_size"], m["embedding"], list(m["hidden"]), m["num_classes"])
        self.model.load_state_dict(torch.load(model_dir / "model.pt", map_location="cpu"))
        self.device = device
        self.model.to(device).eval()

    def scores(self, texts: list[str], batch_size: int = 256) -> dict[str, np.ndarray]:
        import torch

        ids = [np.asarray(encode_words(words(t), self.index, self.meta["max_length"])) for t in texts]
        proba = np.zeros((len(texts), self.meta["num_classes"]), np.float32)
        order = np.argsort([len(x) for x in ids], kind="stable")
        with torch.inference_mode():
            for b in range(0, len(ids), batch_size):
                rows = order[b:b + batch_size]
                batch, lengths = pad_batch([ids[i] for i in rows])
                proba[rows] = torch.softmax(self.model(batch.to(self.device), lengths), 1).float().cpu().numpy()
        return {"proba": proba}

    def predict_frame(self, texts: pd.Series) -> pd.DataFrame:
        """As :meth:`MultitaskPredictor.predict_frame`, without rating or aspects."""
        return sentiment_frame(texts, self.meta["num_classes"], self.scores)[0]


class BilstmPyfunc(ModelFolderPyfunc):
    """A BiLSTM model folder."""

    predictor_class = BilstmPredictor


# ---------------------------------------------------------------------------------------------------
# The train stage


def build_vocabulary(train: "DataFrame", size: int, min_count: int) -> list[str]:
    """The ``size - 2`` most frequent words of the train split's ``text_clean`` that appear in at least
    ``min_count`` reviews (MLlib ``CountVectorizer``; ids 0 and 1 are padding and unknown words)."""
    from pyspark.ml.feature import CountVectorizer, RegexTokenizer

    tokens = RegexTokenizer(inputCol="text_clean", outputCol="_words", pattern=WORD_GAPS, toLowercase=True,
                            minTokenLength=1).transform(train.fillna({"text_clean": ""}))
    model = CountVectorizer(inputCol="_words", outputCol="_counts", vocabSize=size - 2,
                            minDF=float(min_count)).fit(tokens)
    return list(model.vocabulary)


def write_word_snapshot(spark: "SparkSession", cfg: "Config", root: Path, vocab_size: int, min_count: int,
                        max_length: int, max_rows: int | None, sources: list[str],
                        parts: int) -> tuple["Snapshot", list[str]]:
    """The BiLSTM's snapshot: a vocabulary from the train split, and each row's word ids (int32 bytes in
    ``input_ids``, as the token snapshot) with its targets. Returns the snapshot and the vocabulary."""
    from pyspark.sql import functions as F

    from reviewlake.training.data import select_rows, silver_at_version, write_splits

    label = cfg.train.label
    silver, version = silver_at_version(spark, cfg)
    rows = select_rows(silver, cfg, max_rows, sources)
    vocabulary = build_vocabulary(rows.where(F.col("split") == "train"), vocab_size, min_count)

    def ids(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        index = {w: i + 2 for i, w in enumerate(vocabulary)}
        for texts in batches:
            yield pd.Series([np.asarray(encode_words(words(t), index, max_length), dtype="<i4").tobytes()
                             for t in texts.fillna("")])

    frame = rows.select(
        "review_id", "source", "split", "text_clean",
        F.pandas_udf(ids, "binary")(F.col("text_clean")).alias("input_ids"),  # type: ignore[call-overload]
        F.coalesce(F.col(label), F.lit(-1)).cast("int").alias("sentiment"),
        F.col("rating").cast("float").alias("rating"),
        F.transform("aspects", lambda a: a.cast("float")).alias("aspects"),
    )
    return write_splits(spark, cfg, frame, root, parts, version, sources, f"word ids of silver v{version}"), vocabulary


def train_stage(spark: "SparkSession", cfg: "Config", request: "TrainRequest") -> "TrainReport":
    """Vocabulary and snapshot, training through the backend, evaluation per source, registration."""
    from reviewlake import registry
    from reviewlake.evaluate import Predictions, metrics
    from reviewlake.families import train_fingerprint
    from reviewlake.training import stage
    from reviewlake.training.data import Snapshot

    clock = time.perf_counter()
    stage.preflight(spark, request)
    settings = cfg.train.bilstm
    if request.epochs is not None:
        settings = settings.model_copy(update={"epochs": request.epochs})

    def build(run_id: str, run_dir: Path) -> tuple[Snapshot, "RunSpec"]:
        snapshot, vocabulary = write_word_snapshot(
            spark, cfg, run_dir / "data", settings.vocab_size, settings.min_count, settings.max_length,
            request.max_rows or cfg.train.max_rows, request.sources or cfg.train.sources,
            parts=max(2, request.num_proc) * 2)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "vocab.json").write_text(json.dumps(vocabulary))
        return snapshot, stage.run_spec(cfg, snapshot, run_id, run_dir, settings.model_dump(), request.use_gpu,
                                        request.max_steps, vocab_size=len(vocabulary) + 2)

    run_id, run_dir, snapshot, spec = stage.prepare_run(cfg, request, build)
    result = stage.launch(spark, request, train_bilstm, spec, run_id)

    model = build_bilstm(spec)
    model.load_state_dict(torch.load(result["best_state"], map_location="cpu")["model"])
    model_dir = run_dir / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), model_dir / "model.pt")
    shutil.copy(run_dir / "vocab.json", model_dir / "vocab.json")
    meta = {"model_type": "bilstm", "num_classes": snapshot.num_classes, "label": cfg.train.label,
            "vocab_size": spec.extra["vocab_size"], "embedding": settings.embedding, "hidden": settings.hidden,
            "max_length": settings.max_length, "cleaning": cfg.preprocess.cleaning.model_dump()}
    (model_dir / "meta.json").write_text(json.dumps(meta, indent=2))
    predictor = BilstmPredictor(model_dir)
    classes = SENTIMENT_NAMES[snapshot.num_classes]

    def predictions(split: str) -> Predictions:
        frame = stage.read_split(snapshot, split, cfg.train.eval_rows,
                                 ("review_id", "source", "text_clean", "sentiment"))
        proba = predictor.scores(frame["text_clean"].fillna("").tolist())["proba"]
        return Predictions(source=frame["source"].to_numpy(), y_true=frame["sentiment"].to_numpy().astype(int),
                           proba=proba, rating_true=np.full(len(frame), np.nan))

    preds = {split: predictions(split) for split in ("validation", "test")}
    figures = {split: metrics(preds[split], classes) for split in ("validation", "test")}
    val_f1 = stage.validation_f1(preds["validation"])
    record = stage.RunRecord(
        params={"backend": request.backend, "num_proc": request.num_proc, "silver_version": snapshot.silver_version,
                "label": cfg.train.label, "vocab_size": spec.extra["vocab_size"],
                **{f"bilstm.{k}": v for k, v in settings.model_dump().items()}},
        tags={"silver_version": str(snapshot.silver_version),
              "sources": ",".join(sorted({s for v in snapshot.rows_by_source.values() for s in v})),
              "rows": json.dumps(snapshot.rows_by_source), "backend": request.backend,
              "train_config": train_fingerprint(cfg, request.model)},
        figures=figures, val_f1=val_f1, val_hash=snapshot.validation_hash, python_model=BilstmPyfunc(),
        artifacts={"model": str(model_dir)}, requirements=requirements(*PACKAGES),
        metadata={"cleaning": meta["cleaning"]}, classes=classes, predictions=preds,
        config={"train": cfg.train.model_dump(mode="json"), "snapshot": stage.snapshot_meta(snapshot),
                "result": result},
        history=result["history"], history_metric="val_macro_recall")
    name = registry.model_name(cfg, request.model, request.name)
    registered = stage.register_run(spark, cfg, request, run_id, run_dir, record,
                                    stage.champion_scorer(cfg, name, stage.snapshot_validation(cfg, snapshot), classes))
    shutil.rmtree(run_dir / "data", ignore_errors=True)
    return stage.report(request, run_id, registered, snapshot.silver_version, snapshot.rows, val_f1,
                        figures["test"], time.perf_counter() - clock, result)


FAMILIES = (Family("bilstm", train_stage, section="bilstm"),)
