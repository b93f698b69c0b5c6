"""The one training loop of the multi-task transformer, run unchanged by every backend.

:func:`train_multitask` is a plain function of a pickleable spec: ``TorchDistributor.run`` starts it
under torchrun (DDP over gloo, or nccl on a GPU), ``horovod.spark.run`` under Horovod, and a test
calls it directly (one process). Each rank reads its own shard of the run's Parquet snapshot (pyarrow,
or Petastorm under Horovod), trains in two phases (heads only with the encoder frozen, then the top
layers too), evaluates on validation after every epoch, stops early, and on rank 0 writes
checkpoints (model, optimizer, scheduler, step, epoch, position in the epoch) every N steps and at
each epoch's end. Every rank returns the same result, so the launcher may take any rank's.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from reviewlake.models.multitask import MultiTaskModel, load_encoder, multitask_loss

log = logging.getLogger(__name__)


@dataclass
class Shard:
    """One rank's rows, as numpy arrays / lists; ``ids`` are token ids without special tokens (stored
    as int32 bytes in the snapshot)."""

    ids: list[np.ndarray]
    sentiment: np.ndarray
    rating: np.ndarray
    aspects: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def _to_shard(columns: dict[str, list[Any]]) -> Shard:
    return Shard(
        ids=[np.frombuffer(x, dtype="<i4").astype(np.int64) for x in columns["input_ids"]],
        sentiment=np.asarray(columns["sentiment"], dtype=np.int64),
        rating=np.asarray([np.nan if r is None else r for r in columns["rating"]], dtype=np.float32),
        aspects=np.asarray([list(a) for a in columns["aspects"]], dtype=np.float32),
    )


def read_columns(files: list[str], rank: int, world: int, reader: str, names: list[str]) -> dict[str, list[Any]]:
    """Rank ``rank`` of ``world``'s rows of the snapshot files: the columns ``names`` as lists.

    ``pyarrow`` reads every file and keeps rows ``rank::world``; ``petastorm`` gives each rank its
    own row groups (``cur_shard``/``shard_count``); columns hold numbers or bytes, never strings
    (Petastorm's torch side refuses them).
    """
    if reader == "pyarrow":
        import pyarrow.parquet as pq

        table = pq.read_table(files, columns=names) if files else None
        columns = table.to_pydict() if table is not None else {n: [] for n in names}
        return {n: v[rank::world] for n, v in columns.items()}
    import warnings

    warnings.filterwarnings("ignore")  # petastorm on pyarrow 14 warns on every import and read
    from petastorm import make_batch_reader

    out: dict[str, list[Any]] = {n: [] for n in names}
    with make_batch_reader([f"file://{f}" for f in files], schema_fields=names, cur_shard=rank, shard_count=world,
                           num_epochs=1, shuffle_row_groups=False, workers_count=1) as batches:
        for batch in batches:
            for n in names:
                out[n].extend(list(getattr(batch, n)))
    return out


def read_shard(files: list[str], rank: int, world: int, reader: str) -> Shard:
    """Rank ``rank`` of ``world``'s rows of a token snapshot (see :func:`read_columns`)."""
    return _to_shard(read_columns(files, rank, world, reader, ["input_ids", "sentiment", "rating", "aspects"]))


def batch_rows(lengths: np.ndarray, batch_size: int, steps: int, seed: int, start: int = 0) -> Iterator[np.ndarray]:
    """Row indices of ``steps`` shuffled batches (the order fixed by ``seed``), from batch ``start`` on.

    Rows are shuffled, sorted by length within windows of 50 batches (so a batch pads to similar
    lengths: short snippets and full reviews are not mixed), and the batches shuffled again.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))[:steps * batch_size]
    window = batch_size * 50
    order = np.concatenate([chunk[np.argsort(lengths[chunk], kind="stable")]
                            for chunk in np.split(order, range(window, len(order), window))]) if len(order) else order
    for b in rng.permutation(steps)[start:]:
        yield order[b * batch_size:(b + 1) * batch_size]


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


def collate(ids: list[np.ndarray], cls: int, sep: int, pad: int) -> dict[str, torch.Tensor]:
    """[CLS] ids [SEP], padded to the longest in the batch, and the attention mask."""
    width = max(len(x) for x in ids) + 2
    input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, x in enumerate(ids):
        row = torch.cat([torch.tensor([cls]), torch.from_numpy(np.asarray(x, dtype=np.int64)), torch.tensor([sep])])
        input_ids[i, :len(row)] = row
        mask[i, :len(row)] = 1
    return {"input_ids": input_ids, "attention_mask": mask}


class Comm:
    """What the loop needs of the process group: rank, world, sums, and wrapping for training."""

    def __init__(self, kind: str, use_gpu: bool) -> None:
        self.kind = kind
        self.device = torch.device("cpu")
        if kind == "ddp":
            import torch.distributed as dist

            if use_gpu:
                self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
                torch.cuda.set_device(self.device)
            dist.init_process_group("nccl" if use_gpu else "gloo")
            self.rank, self.world = dist.get_rank(), dist.get_world_size()
        elif kind == "horovod":
            import horovod.torch as hvd

            hvd.init()
            if use_gpu:
                self.device = torch.device("cuda", hvd.local_rank())
                torch.cuda.set_device(self.device)
            self.rank, self.world = hvd.rank(), hvd.size()
        else:
            self.rank, self.world = 0, 1
            if use_gpu and torch.cuda.is_available():
                self.device = torch.device("cuda")

    def autocast(self) -> Any:
        """bf16 autocast for forward passes on a GPU; on the CPU, float32 as it is."""
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        if self.kind == "ddp":
            import torch.distributed as dist

            values = values.to(self.device)
            dist.all_reduce(values)
            return values.cpu()
        if self.kind == "horovod":
            import horovod.torch as hvd

            return hvd.allreduce(values, op=hvd.Sum)
        return values

    def min(self, value: int) -> int:
        if self.kind == "ddp":
            import torch.distributed as dist

            t = torch.tensor([value], device=self.device)
            dist.all_reduce(t, op=dist.ReduceOp.MIN)
            return int(t.item())
        if self.kind == "horovod":
            import horovod.torch as hvd

            return int(hvd.allreduce(torch.tensor([value]), op=hvd.Min).item())
        return value

    def broadcast_tensor(self, value: torch.Tensor) -> torch.Tensor:
        """Rank 0's ``value`` on every rank (every rank passes a tensor of the same shape)."""
        return self.sum(value if self.rank == 0 else torch.zeros_like(value))

    def trainer(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[nn.Module, torch.optim.Optimizer]:
        """The module to call forward on and the optimizer to step, for the current trainable set.

        DDP hooks only the parameters that require gradients when it wraps, so the loop wraps again
        when the trainable set changes. Horovod's hooks cannot be removed, so the loop wraps once,
        with every parameter any phase trains (see :func:`train_multitask`).
        """
        if self.kind == "ddp":
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            return DistributedDataParallel(model, device_ids=ids), optimizer
        if self.kind == "horovod":
            import horovod.torch as hvd

            state = optimizer.state_dict()
            base = torch.optim.AdamW(optimizer.param_groups)
            wrapped = hvd.DistributedOptimizer(base, named_parameters=list(model.named_parameters()))
            wrapped.load_state_dict(state)
            return model, wrapped
        return model, optimizer

    def broadcast(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Start every rank from rank 0's parameters and optimizer state (DDP does it when wrapping)."""
        if self.kind == "horovod":
            import horovod.torch as hvd

            hvd.broadcast_parameters(model.state_dict(), root_rank=0)
            hvd.broadcast_optimizer_state(optimizer, root_rank=0)

    def close(self) -> None:
        if self.kind == "ddp":
            import torch.distributed as dist

            dist.destroy_process_group()


def macro_f1(confusion: np.ndarray) -> float:
    """Macro-averaged F1 from a confusion matrix (rows true, columns predicted)."""
    tp = np.diag(confusion).astype(float)
    precision = np.divide(tp, confusion.sum(0), out=np.zeros_like(tp), where=confusion.sum(0) > 0)
    recall = np.divide(tp, confusion.sum(1), out=np.zeros_like(tp), where=confusion.sum(1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=precision + recall > 0)
    return float(f1.mean())


def _save(obj: dict[str, Any], path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)  # a kill mid-write never leaves a torn checkpoint


def build_model(spec: dict[str, Any]) -> MultiTaskModel:
    m = spec["model"]
    model = MultiTaskModel(load_encoder(m["encoder"]), spec["num_classes"], spec["num_aspects"], m["pooling"],
                           m["dropout"])
    if spec.get("bitlinear"):  # multitask-bitlinear: ternary weights, spec["bitlinear"]-bit activations
        from reviewlake.models.bitlinear import to_bitlinear

        to_bitlinear(model, spec["bitlinear"])
    return model


def start_rank(spec: dict[str, Any]) -> tuple[Comm, Path, Path]:
    """What every train function does first in its process: torch threads, logging, the process group,
    seeds, the checkpoint folder. Returns the comm and the paths of the latest and best checkpoints."""
    torch.set_num_threads(spec["torch_threads"])
    if not logging.getLogger().handlers:  # a fresh training process: progress lines on its stderr
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                            datefmt="%H:%M:%S")
    comm = Comm(spec["comm"], spec["use_gpu"])
    random.seed(spec["seed"])
    np.random.seed(spec["seed"])
    torch.manual_seed(spec["seed"])
    ckpt_dir = Path(spec["checkpoint_dir"])
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    return comm, ckpt_dir / "latest.pt", ckpt_dir / "best.pt"


def resume(spec: dict[str, Any], comm: Comm, latest: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
           state: dict[str, Any], scheduler: Any = None) -> tuple[dict[str, Any], int]:
    """With ``spec['resume']`` and a latest checkpoint: load model, optimizer (and scheduler) from it and
    return its loop state and step; otherwise ``state`` and step 0."""
    if not (spec.get("resume") and latest.exists()):
        return state, 0
    saved = torch.load(latest, map_location="cpu", weights_only=False)
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(saved["scheduler"])
    state = saved["state"]
    if comm.rank == 0:
        log.info("resumed from %s at step %d (epoch %d, batch %d)", latest, state["step"], state["epoch"],
                 state["batch"])
    return state, int(state["step"])


def save_latest(spec: dict[str, Any], comm: Comm, latest: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                state: dict[str, Any], scheduler: Any = None) -> None:
    """Rank 0 writes the latest checkpoint: model, optimizer, scheduler (if any) and the loop state."""
    if comm.rank == 0:
        saved = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "state": state,
                 "spec_run": spec["run_id"]}
        if scheduler is not None:
            saved["scheduler"] = scheduler.state_dict()
        _save(saved, latest)


def optimizer_step(comm: Comm, model: nn.Module, optimizer: torch.optim.Optimizer, clip_norm: float) -> None:
    """Clip the gradients and step. Under Horovod the gradients are reduced first (so clipping sees
    the averaged ones), and parameters frozen at the moment lose their (zero) gradient, so the
    optimizer skips them (no weight decay either)."""
    if comm.kind == "horovod":
        optimizer.synchronize()  # type: ignore[attr-defined]
        for p in model.parameters():
            if not p.requires_grad:
                p.grad = None
        nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        with optimizer.skip_synchronize():  # type: ignore[attr-defined]
            optimizer.step()
    else:
        nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        optimizer.step()


def end_epoch(comm: Comm, state: dict[str, Any], model: nn.Module, best_path: Path, score: float, counts: bool,
              entry: dict[str, Any], what: str) -> bool:
    """Record an epoch's validation ``score`` (``entry`` goes into the history), keep the model on rank 0
    when the score is the best so far, and move the state to the next epoch. ``counts``: this epoch
    may be the best and counts towards patience. Returns whether it was the best."""
    improved = counts and score > state["best"]
    state["history"].append({"epoch": state["epoch"], "step": state["step"], **entry})
    if comm.rank == 0:
        log.info("epoch %d: validation %s %.4f%s", state["epoch"], what, score, " (best)" if improved else "")
    if improved:
        state["best"], state["bad_epochs"] = score, 0
        if comm.rank == 0:
            _save({"model": model.state_dict()}, best_path)
    elif counts:
        state["bad_epochs"] += 1
    state["epoch"] += 1
    state["batch"] = 0
    return improved


def finish(comm: Comm, state: dict[str, Any], model: nn.Module, best_path: Path) -> None:
    """End the rank: a run stopped before any best epoch keeps its last model as the best; leave the group."""
    if state["best"] < 0 and comm.rank == 0:
        _save({"model": model.state_dict()}, best_path)
    comm.close()


def train_multitask(spec: dict[str, Any]) -> dict[str, Any]:
    """Train the multi-task model as one rank of ``spec['comm']`` ("single", "ddp" or "horovod").

    Returns the same dict on every rank: the best validation macro-F1, the path of its model state
    (written by rank 0), steps taken and planned, the step resumed from, and the per-epoch history.
    """
    comm, latest, best_path = start_rank(spec)
    m = spec["model"]

    train = read_shard(spec["files"]["train"], comm.rank, comm.world, spec["reader"])
    validation = read_shard(spec["files"]["validation"], comm.rank, comm.world, spec["reader"])
    if spec.get("eval_rows"):  # the same sample every epoch: model selection need not score millions
        keep = -(-spec["eval_rows"] // comm.world)
        validation = Shard(validation.ids[:keep], validation.sentiment[:keep], validation.rating[:keep],
                           validation.aspects[:keep])
    steps_per_epoch = comm.min(len(train) // m["batch_size"])  # equal steps on every rank
    if steps_per_epoch == 0:
        raise ValueError(f"{len(train)} training rows per process is less than one batch of {m['batch_size']}")
    epochs = m["head_epochs"] + m["epochs"]
    planned = steps_per_epoch * epochs
    if spec.get("max_steps"):
        planned = min(planned, spec["max_steps"])

    model = build_model(spec)
    model.to(comm.device)
    tokens = spec["tokens"]
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
    class_weights = torch.tensor(spec["class_weights"], dtype=torch.float32, device=comm.device)
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
        k = spec["num_classes"]
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
        for rows in batch_rows(lengths, m["batch_size"], steps_per_epoch, spec["seed"] + state["epoch"],
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
            if state["step"] % spec["checkpoint_every"] == 0:
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
