"""The multi-task transformer family: a pretrained encoder, pooled, with sentiment, rating and aspect
heads; and its quantized variants ``multitask-int8`` and ``multitask-bitlinear``.

loss = a * CE(sentiment, class weights) + b * MSE(rating) + c * BCE(aspects), each term over the rows
that have that target (a fastText or Rotten Tomatoes row has no star rating: it is masked out of the
rating loss, never filled in). The rating head predicts ``1 + 4 * sigmoid(z)``, inside 1..5.

Training (:func:`train_multitask`, one function every backend runs): each rank reads its shard of the
run's token snapshot, trains in two phases (heads only with the encoder frozen, then the top layers
too), evaluates on validation after every epoch, stops early and checkpoints through the shared
runtime (``reviewlake.training.loop``). The stage registers the best epoch's model as a folder:
``model.pt``, ``encoder/`` (the encoder's config and tokenizer, so it loads offline) and
``meta.json`` (classes, aspects, pooling, lengths, the cleaning rules).

Prediction (:class:`MultitaskPredictor`, behind :class:`MultitaskPyfunc`): a text longer than the
encoder's maximum is split into windows of ``max_length`` tokens, ``window_stride`` apart (at most
``max_windows``), and the logits averaged.

``multitask-int8`` quantizes a registered version's encoder linear layers to dynamic int8 (no
training) and compares both on the same rows; ``multitask-bitlinear`` trains with BitLinear layers
(``reviewlake.quantization``) and compares with the full-precision version of the same encoder.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from reviewlake.encoders import collate, load_encoder, load_tokenizer, windows
from reviewlake.families.base import (SENTIMENT_NAMES, Family, ModelFolderPyfunc, read_meta, requirements,
                                      sentiment_frame)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from reviewlake.config import Config, MultitaskSettings
    from reviewlake.training.data import Snapshot
    from reviewlake.training.loop import Shard
    from reviewlake.training.spec import RunSpec
    from reviewlake.training.stage import TrainReport, TrainRequest

log = logging.getLogger(__name__)

# What a registered version needs to load and predict (pinned from requirements/constraints.txt).
PACKAGES = ("torch", "transformers", "tokenizers", "pandas", "numpy")

class MultiTaskModel(nn.Module):
    """Encoder + pooling + three heads. ``forward`` returns (sentiment logits, rating, aspect logits)."""

    def __init__(self, encoder: nn.Module, num_classes: int, num_aspects: int, pooling: str = "mean",
                 dropout: float = 0.3) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        hidden = int(getattr(encoder, "config").hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.sentiment = nn.Linear(hidden, num_classes)
        self.rating = nn.Linear(hidden, 1)
        self.aspects = nn.Linear(hidden, num_aspects)

    def pool(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "cls":
            return states[:, 0]
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        return (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                pooled: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The heads over the pooled encoding of the tokens, or over ``pooled`` when given (features the
        frozen encoder computed once: see the training loop's feature cache)."""
        if pooled is None:
            if input_ids is None or attention_mask is None:
                raise ValueError("forward needs input_ids and attention_mask, or pooled")
            pooled = self.pool(input_ids, attention_mask)
        pooled = self.dropout(pooled)
        rating = 1.0 + 4.0 * torch.sigmoid(self.rating(pooled).squeeze(-1))
        return self.sentiment(pooled), rating, self.aspects(pooled)

    def encoder_layers(self) -> list[nn.Module]:
        """The encoder's transformer layers, bottom to top."""
        encoder = getattr(self.encoder, "encoder", None)
        layers = getattr(encoder, "layer", None)
        if layers is None:
            raise ValueError(f"cannot find the layers of encoder {type(self.encoder).__name__}")
        return list(layers)

    def set_trainable(self, top_layers: int) -> None:
        """Heads always train; of the encoder, only the top ``top_layers`` layers (0 = frozen; all of
        its layers or more = the whole encoder, embeddings included)."""
        layers = self.encoder_layers()
        whole = top_layers >= len(layers)
        for p in self.encoder.parameters():
            p.requires_grad = whole
        for layer in layers[len(layers) - top_layers:] if top_layers else []:
            for p in layer.parameters():
                p.requires_grad = True
        for name, p in self.encoder.named_parameters():
            if name.startswith("pooler."):  # BERT's pooler is unused (we pool the states): no gradient
                p.requires_grad = False


def multitask_loss(
    outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    sentiment: torch.Tensor,
    rating: torch.Tensor,
    aspects: torch.Tensor,
    weights: tuple[float, float, float],
    class_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The combined loss over the rows that have each target; also its parts, for logging.

    ``sentiment`` is -1 where a row has no label, ``rating`` NaN where it has none; ``aspects`` is
    always present (the lexicon labels every row).
    """
    from reviewlake.training.loop import masked_cross_entropy

    logits, rating_pred, aspect_logits = outputs
    has_rating = (~torch.isnan(rating)).to(rating_pred.dtype)
    # Masked means: every head stays in the graph (a zero gradient when no row of the batch has its
    # target), which DDP needs, and a missing target adds nothing.
    l_sent = masked_cross_entropy(logits, sentiment, class_weights)
    l_rating = ((rating_pred - torch.nan_to_num(rating)) ** 2 * has_rating).sum() / has_rating.sum().clamp(min=1.0)
    l_aspect = F.binary_cross_entropy_with_logits(aspect_logits, aspects)
    total = weights[0] * l_sent + weights[1] * l_rating + weights[2] * l_aspect
    return total, {"loss": total.item(), "loss_sentiment": l_sent.item(), "loss_rating": l_rating.item(),
                   "loss_aspects": l_aspect.item()}


# -----------------------------------------------------------------------------------------------
# Training: one rank


def targets(shard: Shard, rows: np.ndarray) -> dict[str, torch.Tensor]:
    return {"sentiment": torch.from_numpy(shard.sentiment[rows]), "rating": torch.from_numpy(shard.rating[rows]),
            "aspects": torch.from_numpy(shard.aspects[rows])}


def encode(model: MultiTaskModel, shard: Shard, max_len: int, tokens: tuple[int, int, int], batch_size: int,
           device: torch.device) -> torch.Tensor:
    """The frozen encoder's pooled vector of every row (eval mode, no dropout), in row order.

    Rows are encoded shortest first, so a batch pads little.
    """
    out = torch.empty((len(shard), int(getattr(model.encoder, "config").hidden_size)), dtype=torch.float32)
    order = np.argsort([len(x) for x in shard.ids], kind="stable")
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for b in range(0, len(order), batch_size):
            rows = order[b:b + batch_size]
            batch = collate([shard.ids[i][:max_len - 2] for i in rows], *tokens)
            out[torch.from_numpy(rows)] = model.pool(batch["input_ids"].to(device),
                                                     batch["attention_mask"].to(device)).float().cpu()
    model.train(was_training)
    return out


def build_model(spec: RunSpec) -> MultiTaskModel:
    m = spec.model
    model = MultiTaskModel(load_encoder(m["encoder"]), spec.num_classes, spec.extra["num_aspects"], m["pooling"],
                           m["dropout"])
    if spec.extra.get("bitlinear"):  # multitask-bitlinear: ternary weights, spec.extra["bitlinear"]-bit activations
        from reviewlake.quantization import to_bitlinear

        to_bitlinear(model, spec.extra["bitlinear"])
    return model


def train_multitask(spec: RunSpec) -> dict[str, Any]:
    """Train the multi-task model as one rank of ``spec.comm`` ("single", "ddp" or "horovod").

    Returns the same dict on every rank: the best validation macro-F1, the path of its model state
    (written by rank 0), steps taken and planned, the step resumed from, and the per-epoch history.
    """
    from reviewlake.metrics import macro_f1
    from reviewlake.training.loop import (Shard, batch_rows, end_epoch, finish, optimizer_step, read_shard, resume,
                                          save_latest, start_rank)

    comm, latest, best_path = start_rank(spec)
    m = spec.model

    train = read_shard(spec.files["train"], comm.rank, comm.world, spec.reader)
    validation = read_shard(spec.files["validation"], comm.rank, comm.world, spec.reader)
    if spec.eval_rows:  # the same sample every epoch: model selection need not score millions
        keep = -(-spec.eval_rows // comm.world)
        validation = Shard(validation.ids[:keep], validation.sentiment[:keep], validation.rating[:keep],
                           validation.aspects[:keep])
    steps_per_epoch = comm.min(len(train) // m["batch_size"])  # equal steps on every rank
    if steps_per_epoch == 0:
        raise ValueError(f"{len(train)} training rows per process is less than one batch of {m['batch_size']}")
    epochs = m["head_epochs"] + m["epochs"]
    planned = steps_per_epoch * epochs
    if spec.max_steps:
        planned = min(planned, spec.max_steps)

    model = build_model(spec)
    model.to(comm.device)
    tokens = spec.extra["tokens"]
    head_names = {n for n, _ in model.named_parameters() if not n.startswith("encoder.")}
    no_decay = ("bias", "LayerNorm.weight", "norm.weight")
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for n, p in model.named_parameters():
        groups.setdefault((n in head_names, not n.endswith(no_decay)), []).append(p)
    optimizer: torch.optim.Optimizer = torch.optim.AdamW([
        {"params": ps, "lr": m["head_lr"] if head else m["lr"], "weight_decay": m["weight_decay"] if decay else 0.0}
        for (head, decay), ps in sorted(groups.items())])
    head_steps = min(planned, steps_per_epoch * m["head_epochs"])
    # Each phase has its own schedule: linear warm-up over warmup_share of its steps, then linear decay
    # to zero at its end. ``bounds`` is the current phase's first step and end step.
    bounds = [0, head_steps if head_steps else planned]

    def factor(step: int) -> float:
        length = max(1, bounds[1] - bounds[0])
        warm = max(1, int(m["warmup_share"] * length))
        at = step - bounds[0]
        return min((at + 1) / warm, max(0.0, (length - at) / max(1, length - warm)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    class_weights = torch.tensor(spec.class_weights, dtype=torch.float32, device=comm.device)
    weights = (m["loss_weights"]["sentiment"], m["loss_weights"]["rating"], m["loss_weights"]["aspects"])

    state: dict[str, Any] = {"step": 0, "epoch": 0, "batch": 0, "best": -1.0, "bad_epochs": 0, "history": [],
                             "phase": None, "phase_start": 0}
    state, resumed_from = resume(spec, comm, latest, model, optimizer, state, scheduler)

    def checkpoint() -> None:
        save_latest(spec, comm, latest, model, opt, state, scheduler)

    # Heads-only epochs after the first reuse the frozen encoder's pooled vectors, computed once per
    # process, when they fit in feature_cache_mb: each such epoch then takes seconds, not an encoder pass.
    hidden = int(getattr(model.encoder, "config").hidden_size)
    use_cache = (m["head_epochs"] > 1 and head_steps > steps_per_epoch
                 and (len(train) + len(validation)) * hidden * 4 <= m["feature_cache_mb"] * 2 ** 20)
    features: dict[str, torch.Tensor] = {}

    def evaluate() -> float:
        model.eval()
        k = spec.num_classes
        confusion = torch.zeros((k, k), dtype=torch.long)
        n = len(validation)
        with torch.no_grad():
            for b in range(0, n, m["eval_batch_size"]):
                rows = range(b, min(n, b + m["eval_batch_size"]))
                with comm.autocast():
                    if "validation" in features:
                        logits = model(pooled=features["validation"][b:b + len(rows)].to(comm.device))[0]
                    else:
                        batch = collate([validation.ids[i][:m["max_length"] - 2] for i in rows], *tokens)
                        logits = model(batch["input_ids"].to(comm.device),
                                       batch["attention_mask"].to(comm.device))[0]
                truth = torch.from_numpy(validation.sentiment[list(rows)])
                pred = logits.argmax(-1).cpu()
                for t, p in zip(truth[truth >= 0].tolist(), pred[truth >= 0].tolist()):
                    confusion[t, p] += 1
        model.train()
        return macro_f1(comm.sum(confusion).numpy())

    phase = None
    trainer: nn.Module = model
    opt = optimizer
    comm.broadcast(model, optimizer)
    if comm.kind == "horovod":
        # One wrapper for the whole run, hooking every parameter some phase trains; parameters
        # frozen in the current phase get a zero gradient from Horovod, dropped before the step.
        model.set_trainable(m["unfreeze_layers"] if m["epochs"] > 0 else 0)
        trainer, opt = comm.trainer(model, optimizer)
        # The wrapper loaded the optimizer's state, so it holds param groups of its own: the learning-
        # rate schedule must drive those, or Horovod trains at the first step's rate throughout.
        scheduler.optimizer = opt
    lengths = np.asarray([min(len(x), m["max_length"]) for x in train.ids])
    busy = 0.0  # seconds in training steps (batches, forward, backward, step), for throughput
    clock = time.perf_counter()
    while state["epoch"] < epochs and state["step"] < planned:
        stage = 0 if state["epoch"] < m["head_epochs"] else 1  # heads only, then fine-tuning
        top = 0 if stage == 0 else m["unfreeze_layers"]
        if stage != phase:
            model.set_trainable(top)
            if comm.kind != "horovod":
                trainer, opt = comm.trainer(model, opt)
            phase = stage
            if state["phase"] != stage:  # a new phase, not one resumed
                state["phase"], state["phase_start"] = stage, state["step"]
            end = head_steps if stage == 0 else min(planned, state["phase_start"] + steps_per_epoch * m["epochs"])
            bounds[:] = [state["phase_start"], end]
            for group, base in zip(opt.param_groups, scheduler.base_lrs):
                group["lr"] = base * factor(state["step"])
            features.clear()
            if stage == 0 and use_cache:
                clock = time.perf_counter()
                for name, shard in (("train", train), ("validation", validation)):
                    with comm.autocast():
                        features[name] = encode(model, shard, m["max_length"], tokens, m["eval_batch_size"],
                                                comm.device)
                if comm.rank == 0:
                    log.info("encoded %d rows once for the heads-only epochs (%.1f rows/s per process)",
                             len(train) + len(validation),
                             (len(train) + len(validation)) / (time.perf_counter() - clock))
                clock = time.perf_counter()
        model.train()
        seen = 0
        started = time.perf_counter()
        for rows in batch_rows(lengths, m["batch_size"], steps_per_epoch, spec.seed + state["epoch"],
                               start=state["batch"]):
            if "train" in features:
                inputs = {"pooled": features["train"][torch.from_numpy(rows)]}
            else:
                inputs = collate([train.ids[i][:m["max_length"] - 2] for i in rows], *tokens)
            batch = {k: v.to(comm.device) for k, v in (inputs | targets(train, rows)).items()}
            with comm.autocast():  # bf16 on a GPU; the loss in float32
                outputs = trainer(**{k: batch[k] for k in inputs})
            loss, parts = multitask_loss(tuple(o.float() for o in outputs), batch["sentiment"], batch["rating"],
                                         batch["aspects"], weights, class_weights)
            opt.zero_grad()
            loss.backward()
            optimizer_step(comm, model, opt, m["clip_norm"])
            scheduler.step()
            state["step"] += 1
            state["batch"] += 1
            seen += len(rows)
            if comm.rank == 0 and state["step"] % 10 == 0:
                log.info("step %d/%d epoch %d loss %.4f (%.1f samples/s per process)", state["step"], planned,
                         state["epoch"], parts["loss"], seen / (time.perf_counter() - clock))
            if state["step"] % spec.checkpoint_every == 0:
                checkpoint()
            if state["step"] >= planned:
                break
        busy += time.perf_counter() - started
        if state["batch"] < steps_per_epoch and state["step"] >= planned:
            break  # stopped by max_steps inside the epoch
        f1 = evaluate()
        end_epoch(comm, state, model, best_path, f1, True,
                  {"val_macro_f1": f1, "phase": "heads" if stage == 0 else f"top{top}",
                   "lr": max(g["lr"] for g in opt.param_groups)}, "macro-F1")  # lr: 0 at a phase's end
        stop = False
        if state["bad_epochs"] >= m["patience"]:  # patience ends the heads-only phase, or the run
            if stage == 0 and m["epochs"] > 0:
                state["epoch"] = max(state["epoch"], m["head_epochs"])
            else:
                stop = True
        if stage == 0 and state["epoch"] >= m["head_epochs"]:
            state["bad_epochs"] = 0  # fine-tuning counts its own epochs without improvement
        checkpoint()
        if stop:
            break
        clock = time.perf_counter()
    finish(comm, state, model, best_path)
    return {"best_val_macro_f1": state["best"], "best_state": str(best_path), "steps": state["step"],
            "planned_steps": planned, "resumed_from_step": resumed_from, "history": state["history"],
            "world_size": comm.world, "steps_per_epoch": steps_per_epoch,
            # this run's training samples over all ranks, and the returning rank's seconds in training steps
            "samples": (state["step"] - resumed_from) * m["batch_size"] * comm.world, "train_seconds": busy}


# -----------------------------------------------------------------------------------------------
# Prediction


def save_model_dir(model: Any, tokenizer: Any, meta: dict[str, Any], out: Path) -> Path:
    """Write a trained :class:`MultiTaskModel` as a model folder."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    if meta.get("quantized") == "bitlinear":  # ternary weights packed four to a byte (freezes the model)
        from reviewlake.quantization import pack

        torch.save(pack(model), out / "model.pt")
    else:
        torch.save(model.state_dict(), out / "model.pt")
    model.encoder.config.save_pretrained(out / "encoder")
    tokenizer.save_pretrained(out / "encoder")
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    return out


class MultitaskPredictor:
    """Scores texts with a saved multi-task model, on the CPU unless ``device`` says otherwise."""

    def __init__(self, model_dir: Path, device: str = "cpu", threads: int | None = None) -> None:
        import torch
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        if threads:
            torch.set_num_threads(threads)
        self.model_dir = model_dir
        self.meta = read_meta(model_dir)
        config = AutoConfig.from_pretrained(model_dir / "encoder", local_files_only=True)
        self.model: Any = MultiTaskModel(AutoModel.from_config(config), self.meta["num_classes"],
                                         len(self.meta["aspects"]), self.meta["pooling"])
        state = torch.load(model_dir / "model.pt", map_location="cpu")
        if self.meta.get("quantized") == "int8":  # the saved state is of the quantized module
            from reviewlake.quantization import quantize_int8

            self.model = quantize_int8(self.model)
            device = "cpu"  # dynamic int8 kernels run on the CPU
        if self.meta.get("quantized") == "bitlinear":
            from reviewlake.quantization import to_bitlinear, unpack

            unpack(to_bitlinear(self.model, self.meta["activation_bits"]), state)
        else:
            self.model.load_state_dict(state)
        self.device = torch.device(device)
        self.model.to(self.device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir / "encoder", local_files_only=True)

    def scores(self, texts: list[str], batch_size: int = 64) -> dict[str, np.ndarray]:
        """Class probabilities, rating and aspect probabilities per text (windows averaged)."""
        import torch

        m = self.meta
        ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        pieces, owner = [], []
        for i, x in enumerate(ids):
            for w in windows(x or [self.tokenizer.unk_token_id], m["max_length"] - 2, m["window_stride"],
                             m["max_windows"]):
                pieces.append(np.asarray(w))
                owner.append(i)
        order = np.argsort([len(p) for p in pieces])  # similar lengths per batch: less padding
        logits = np.zeros((len(pieces), m["num_classes"]), np.float32)
        rating = np.zeros(len(pieces), np.float32)
        aspects = np.zeros((len(pieces), len(m["aspects"])), np.float32)
        tok = self.tokenizer
        # bf16 on a GPU (the heads' outputs are cast back to float32 below); float32 on the CPU.
        with torch.inference_mode(), torch.autocast("cuda", torch.bfloat16, enabled=self.device.type == "cuda"):
            for b in range(0, len(pieces), batch_size):
                rows = order[b:b + batch_size]
                batch = collate([pieces[r] for r in rows], tok.cls_token_id, tok.sep_token_id, tok.pad_token_id)
                out = self.model(batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device))
                logits[rows], rating[rows], aspects[rows] = (t.float().cpu().numpy() for t in out)
        owner_arr = np.asarray(owner)
        counts = np.bincount(owner_arr, minlength=len(texts)).astype(np.float32)[:, None]

        def mean(values: np.ndarray) -> np.ndarray:
            total = np.zeros((len(texts),) + values.shape[1:], np.float32)
            np.add.at(total, owner_arr, values)
            return total / (counts if values.ndim == 2 else counts[:, 0])

        avg = mean(logits)
        proba = np.exp(avg - avg.max(1, keepdims=True))
        proba /= proba.sum(1, keepdims=True)
        return {"proba": proba, "rating": mean(rating), "aspects": 1 / (1 + np.exp(-mean(aspects))),
                "windows": counts[:, 0]}

    def predict_frame(self, texts: pd.Series) -> pd.DataFrame:
        """The columns ``predict`` adds to a table of texts; an empty text gets a status, not a score."""
        out, ok, s = sentiment_frame(texts, self.meta["num_classes"], self.scores)
        if s is not None:
            if self.meta.get("rating_rows", 1):  # a model trained without star ratings predicts none
                out.loc[ok, "rating_pred"] = s["rating"]
            out.loc[ok, "aspects"] = [
                ";".join(a for a, p in zip(self.meta["aspects"], row) if p >= 0.5) for row in s["aspects"]]
            out.loc[ok, "aspect_probs"] = [json.dumps({a: round(float(p), 4) for a, p in zip(self.meta["aspects"], row)})
                                           for row in s["aspects"]]
        return out


class MultitaskPyfunc(ModelFolderPyfunc):
    """A multi-task (or its int8 or BitLinear) model folder."""

    predictor_class = MultitaskPredictor


# ---------------------------------------------------------------------------------------------------
# The train stages: multitask (and BitLinear), int8


def train_stage(spark: "SparkSession", cfg: "Config", request: "TrainRequest") -> "TrainReport":
    """Snapshot, train through the request's backend, evaluate per source and register a multi-task
    (or, for ``multitask-bitlinear``, BitLinear) model."""
    from reviewlake.evaluate import metrics
    from reviewlake.quantization import BITLINEAR_METHOD
    from reviewlake.training import stage
    from reviewlake.training.data import Snapshot, write_snapshot

    clock = time.perf_counter()
    stage.preflight(spark, request)
    bitlinear = request.model == "multitask-bitlinear"
    settings = cfg.train.bitlinear_multitask() if bitlinear else cfg.train.multitask
    if request.epochs is not None:
        settings = settings.model_copy(update={"epochs": request.epochs})
    max_tokens = settings.max_length + settings.window_stride * (settings.max_windows - 1)

    def build(run_id: str, run_dir: Path) -> tuple[Snapshot, "RunSpec"]:
        snapshot = write_snapshot(spark, cfg, run_dir / "data", settings.encoder, max_tokens,
                                  request.max_rows or cfg.train.max_rows, request.sources or cfg.train.sources,
                                  parts=max(2, request.num_proc) * 2)
        spec = loop_spec(cfg, settings, snapshot, run_id, run_dir, request.use_gpu, request.max_steps)
        if bitlinear:
            spec = spec.with_(extra={**spec.extra, "bitlinear": cfg.train.bitlinear.activation_bits})
        return snapshot, spec

    run_id, run_dir, snapshot, spec = stage.prepare_run(cfg, request, build)
    result = stage.launch(spark, request, train_multitask, spec, run_id)

    model = build_model(spec)
    model.load_state_dict(torch.load(result["best_state"], map_location="cpu")["model"])
    aspects = list(cfg.preprocess.labels.aspects)
    import pyarrow.parquet as pq

    rated = pq.read_table(snapshot.files["train"], columns=["rating"]).column("rating").drop_null()
    meta = {"model_type": "multitask", "rating_rows": len(rated), "num_classes": snapshot.num_classes,
            "label": cfg.train.label, "aspects": aspects, "pooling": settings.pooling,
            "max_length": settings.max_length, "window_stride": settings.window_stride,
            "max_windows": settings.max_windows, "encoder": settings.encoder,
            "cleaning": cfg.preprocess.cleaning.model_dump()}
    if bitlinear:
        meta |= {"quantized": "bitlinear", "activation_bits": cfg.train.bitlinear.activation_bits}
    model_dir = save_model_dir(model, load_tokenizer(settings.encoder), meta, run_dir / "model")
    predictor = MultitaskPredictor(model_dir, threads=os.cpu_count())  # the driver scores with all its cores
    classes = SENTIMENT_NAMES[snapshot.num_classes]
    frames = {split: stage.read_split(snapshot, split, cfg.train.eval_rows) for split in ("validation", "test")}
    # A BitLinear model's test figures come from its comparison with full precision (the same rows, scored once).
    comparison = compare_with_full_precision(cfg, request, predictor, frames["test"], classes) if bitlinear else None
    predictions = {split: comparison.figures["bitlinear"]["test"] if comparison is not None and split == "test"
                   else stage.evaluate_split(predictor, frame, len(aspects)) for split, frame in frames.items()}
    figures = {split: metrics(predictions[split], classes) for split in ("validation", "test")}
    val_f1 = stage.validation_f1(predictions["validation"])
    tags = {"silver_version": str(snapshot.silver_version),
            "sources": ",".join(sorted({s for v in snapshot.rows_by_source.values() for s in v})),
            "rows": json.dumps(snapshot.rows_by_source), "encoder": settings.encoder,
            "backend": request.backend, "train_config": _fingerprint(cfg, request.model),
            "candidate": request.candidate or "default"}
    if comparison is not None:
        tags |= {"quantization": BITLINEAR_METHOD, **comparison.tags}
    record = stage.RunRecord(
        params={"backend": request.backend, "num_proc": request.num_proc, "encoder": settings.encoder,
                "silver_version": snapshot.silver_version, "label": cfg.train.label,
                "candidate": request.candidate or "default",
                **{f"multitask.{k}": v for k, v in settings.model_dump().items()}},
        tags=tags, figures=figures, val_f1=val_f1, val_hash=snapshot.validation_hash,
        python_model=MultitaskPyfunc(), artifacts={"model": str(model_dir)}, requirements=requirements(*PACKAGES),
        metadata={"cleaning": meta["cleaning"]}, classes=classes, predictions=predictions,
        config={"train": cfg.train.model_dump(mode="json"), "preprocess": cfg.preprocess.model_dump(mode="json"),
                "snapshot": stage.snapshot_meta(snapshot), "result": result},
        history=result["history"], texts={"comparison.txt": comparison.text} if comparison is not None else {})
    name = _name(cfg, request)
    registered = stage.register_run(spark, cfg, request, run_id, run_dir, record,
                                    stage.champion_scorer(cfg, name, stage.snapshot_validation(cfg, snapshot), classes))
    shutil.rmtree(run_dir / "data", ignore_errors=True)  # the snapshot served its run; the model is registered
    return stage.report(request, run_id, registered, snapshot.silver_version, snapshot.rows, val_f1,
                        figures["test"], time.perf_counter() - clock, result,
                        comparison.text if comparison is not None else "")


def loop_spec(cfg: "Config", settings: "MultitaskSettings", snapshot: "Snapshot", run_id: str, run_dir: Path,
              use_gpu: bool, max_steps: int | None) -> "RunSpec":
    """The spec :func:`train_multitask` runs with: ``settings`` over the run's token ``snapshot``."""
    from reviewlake.training.stage import run_spec

    tokenizer = load_tokenizer(settings.encoder)
    return run_spec(cfg, snapshot, run_id, run_dir, settings.model_dump(), use_gpu, max_steps,
                    num_aspects=len(cfg.preprocess.labels.aspects),
                    tokens=[tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id])


def _name(cfg: "Config", request: "TrainRequest") -> str:
    from reviewlake import registry

    return registry.model_name(cfg, request.model, request.name)


def _fingerprint(cfg: "Config", model_type: str) -> str:
    from reviewlake.families import train_fingerprint

    return train_fingerprint(cfg, model_type)


def compare_with_full_precision(cfg: "Config", request: "TrainRequest", predictor: MultitaskPredictor,
                                frame: pd.DataFrame, classes: list[str]) -> "Comparison | None":
    """A BitLinear model against the full-precision multitask version ``request.source_model`` on the same
    test rows, in this run (None when there is no such version). By default the version of the same
    encoder (the seed compared a model with its own full-precision self): the champion if it has that
    encoder, else the best on validation of those that have."""
    from reviewlake import registry

    reference = request.source_model or same_encoder_version(cfg, cfg.train.bitlinear_multitask().encoder)
    try:
        full = registry.load(cfg, reference).unwrap_python_model().predictor
    except ValueError as e:
        log.warning("no full-precision model to compare with: %s", e)
        return None
    return compare(reference, {"fp32": full, "bitlinear": predictor}, frame, classes)


def same_encoder_version(cfg: "Config", encoder: str) -> str:
    """``multitask@ALIAS`` when the champion was trained with ``encoder``, else ``multitask/N`` for the best
    version on validation with that encoder (the champion reference when none has it)."""
    from reviewlake import registry

    name = f"{cfg.registry.prefix}multitask"
    champion = f"{name}@{cfg.registry.alias}"
    client = registry.configure(cfg)
    versions = [v for v in client.search_model_versions(f"name='{name}'") if v.tags.get("encoder") == encoder]
    current = registry.champion(client, name, cfg.registry.alias)
    if not versions or (current is not None and current.tags.get("encoder") == encoder):
        return champion
    best = max(versions, key=lambda v: float(v.tags.get(registry.VAL_F1_TAG, "-1")))
    return f"{name}/{best.version}"


def evaluation_rows(spark: "SparkSession", cfg: "Config", silver_version: int, sources: list[str],
                    split: str) -> pd.DataFrame:
    """The rows of ``split`` a model trained on silver ``silver_version`` was measured on (the same
    fixed sample: the first ``train.eval_rows`` by review id)."""
    from pyspark.sql import functions as F

    label = cfg.train.label
    silver = spark.read.format("delta").option("versionAsOf", silver_version).table(cfg.table("silver"))
    rows = (silver.where((F.col("split") == split) & F.col("source").isin(sources))
            .select("review_id", "source", "text_clean", F.coalesce(F.col(label), F.lit(-1)).cast("int").alias(
                "sentiment"), F.col("rating").cast("float").alias("rating"),
                F.transform("aspects", lambda a: a.cast("float")).alias("aspects"))
            .orderBy("review_id").limit(cfg.train.eval_rows))
    frame: pd.DataFrame = rows.toPandas()
    return frame


@dataclass
class Comparison:
    """A quantized model against its full-precision counterpart on the same rows, in one run."""

    text: str                            # what the run prints and logs as comparison.txt
    tags: dict[str, str]                 # for the registered version
    figures: dict[str, dict[str, Any]]   # per model: test predictions, rate (reviews/s), size_mb
    threads: int


def compare(reference: str, predictors: dict[str, MultitaskPredictor], frame: pd.DataFrame,
            classes: list[str]) -> Comparison:
    """Score ``frame`` with the full-precision model and the quantized one (``predictors``: ``fp32`` first,
    then the other) one after the other on the same threads: test accuracy per source, size of the saved
    weights on disk, CPU reviews/s (after a warm-up batch each)."""
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


def int8_stage(spark: "SparkSession", cfg: "Config", request: "TrainRequest") -> "TrainReport":
    """``multitask-int8``: quantize ``request.source_model`` (default ``multitask@champion``), compare it with
    its source on the test rows the source was measured on, and register it. No training."""
    import hashlib

    from reviewlake import registry
    from reviewlake.evaluate import metrics
    from reviewlake.quantization import INT8_METHOD, quantize_int8
    from reviewlake.training import stage

    clock = time.perf_counter()
    reference = request.source_model or f"{cfg.registry.prefix}multitask@{cfg.registry.alias}"
    source = registry.find_version(cfg, reference)
    loaded = registry.load(cfg, reference).unwrap_python_model()
    full = getattr(loaded, "predictor", None)
    if not isinstance(full, MultitaskPredictor) or full.meta.get("quantized"):
        raise ValueError(f"{reference} is not a full-precision multitask model: nothing to quantize")
    silver_version = int(source.tags["silver_version"])
    sources = source.tags["sources"].split(",")
    run_id = stage.new_run_id()
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
    figures["int8"]["validation"] = stage.evaluate_split(int8, frames["validation"], len(full.meta["aspects"]))
    split_figures = {"validation": metrics(figures["int8"]["validation"], classes),
                     "test": metrics(figures["int8"]["test"], classes),
                     "test_fp32": metrics(figures["fp32"]["test"], classes)}
    val_f1 = stage.validation_f1(figures["int8"]["validation"])
    val_hash = hashlib.sha256("\n".join(sorted(frames["validation"]["review_id"])).encode()).hexdigest()[:16]
    record = stage.RunRecord(
        params={"source_model": f"{source.name}/{source.version}", "silver_version": silver_version,
                "threads": comparison.threads},
        tags={"silver_version": str(silver_version), "sources": ",".join(sources),
              "source_model": f"{source.name}/{source.version}", "quantization": INT8_METHOD,
              "train_config": _fingerprint(cfg, request.model), **comparison.tags},
        figures=split_figures, val_f1=val_f1, val_hash=val_hash, python_model=MultitaskPyfunc(),
        artifacts={"model": str(model_dir)}, requirements=requirements(*PACKAGES),
        metadata={"cleaning": full.meta.get("cleaning", cfg.preprocess.cleaning.model_dump())}, classes=classes,
        predictions={"test": figures["int8"]["test"]},
        metrics={f"{label}.{key}": figures[label][field] for label in ("fp32", "int8")
                 for key, field in (("size_mb", "size_mb"), ("reviews_per_s", "rate"))},
        texts={"comparison.txt": comparison.text})
    registered = stage.register_run(spark, cfg, request, run_id, run_dir, record, None)
    return stage.report(request, run_id, registered, silver_version, {s: len(f) for s, f in frames.items()},
                        val_f1, split_figures["test"], time.perf_counter() - clock, details=comparison.text)


def int8_up_to_date(spark: "SparkSession", cfg: "Config", name: str) -> str | None:
    """An int8 version is up to date when it quantized the current multitask champion the current way."""
    from reviewlake import registry
    from reviewlake.quantization import INT8_METHOD

    client = registry.configure(cfg)
    source = registry.champion(client, registry.model_name(cfg, "multitask"), cfg.registry.alias)
    wanted = f"{source.name}/{source.version}" if source is not None else None
    return next((f"{name} v{v.version}" for v in client.search_model_versions(f"name = '{name}'")
                 if wanted and v.tags.get("source_model") == wanted and v.tags.get("quantization") == INT8_METHOD),
                None)


FAMILIES = (
    Family("multitask", train_stage, section="multitask", candidates=True, fingerprint_all=True),
    Family("multitask-int8", int8_stage, launcher="quantized on the driver", up_to_date=int8_up_to_date,
           fingerprint_all=True),
    Family("multitask-bitlinear", train_stage, section="bitlinear"),
)
