"""The training runtime every family's train function runs on, whatever launched it.

A train function is a plain function of a :class:`~reviewlake.training.spec.RunSpec`:
``TorchDistributor.run`` starts it under torchrun (DDP over gloo, or nccl on a GPU),
``horovod.spark.run`` under Horovod, and a test calls it directly (one process). This module is what
such a function shares: its rank's shard of the run's Parquet snapshot (pyarrow, or Petastorm under
Horovod), the process group (:class:`Comm`), shuffled length-sorted batches, checkpoints written by
rank 0 (model, optimizer, scheduler, loop state) every N steps and at each epoch's end, resume,
early-stopping bookkeeping, and the masked loss. Every rank returns the same result, so the launcher
may take any rank's.
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
from torch.nn import functional as F

from reviewlake.training.spec import RunSpec

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


def _save(obj: dict[str, Any], path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)  # a kill mid-write never leaves a torn checkpoint


def start_rank(spec: RunSpec) -> tuple[Comm, Path, Path]:
    """What every train function does first in its process: torch threads, logging, the process group,
    seeds, the checkpoint folder. Returns the comm and the paths of the latest and best checkpoints."""
    torch.set_num_threads(spec.torch_threads)
    if not logging.getLogger().handlers:  # a fresh training process: progress lines on its stderr
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                            datefmt="%H:%M:%S")
    comm = Comm(spec.comm, spec.use_gpu)
    random.seed(spec.seed)
    np.random.seed(spec.seed)
    torch.manual_seed(spec.seed)
    ckpt_dir = Path(spec.checkpoint_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    return comm, ckpt_dir / "latest.pt", ckpt_dir / "best.pt"


def resume(spec: RunSpec, comm: Comm, latest: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
           state: dict[str, Any], scheduler: Any = None) -> tuple[dict[str, Any], int]:
    """With ``spec.resume`` and a latest checkpoint: load model, optimizer (and scheduler) from it and
    return its loop state and step; otherwise ``state`` and step 0."""
    if not (spec.resume and latest.exists()):
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


def save_latest(spec: RunSpec, comm: Comm, latest: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                state: dict[str, Any], scheduler: Any = None) -> None:
    """Rank 0 writes the latest checkpoint: model, optimizer, scheduler (if any) and the loop state."""
    if comm.rank == 0:
        saved = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "state": state,
                 "spec_run": spec.run_id}
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


def masked_cross_entropy(logits: torch.Tensor, labels: torch.Tensor,
                         class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Cross entropy (weighted by ``class_weights``) over the rows with a label; ``-1`` marks a row
    without one, which adds nothing (and a batch without labels gives 0, still in the graph)."""
    has_label = (labels >= 0).to(logits.dtype)
    per_row = F.cross_entropy(logits, labels.clamp(min=0), weight=class_weights, reduction="none")
    if class_weights is not None:
        norm = (class_weights[labels.clamp(min=0)] * has_label).sum().clamp(min=1e-8)
    else:
        norm = has_label.sum().clamp(min=1.0)
    return (per_row * has_label).sum() / norm
