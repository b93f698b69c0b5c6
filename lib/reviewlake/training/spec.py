"""The typed, frozen spec a train function gets in each training process."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class RunSpec:
    """What a train function gets in each training process: plain, pickleable values only.

    ``model`` holds the family's settings (``train.<section>`` as a dict); ``extra`` what only that
    family needs (token ids, vocabulary size, embedding width). The backend sets ``comm`` (how ranks
    talk: single, ddp, horovod) and ``reader`` (pyarrow or petastorm). Saved as ``spec.json`` beside
    the checkpoints, so ``--resume`` runs with exactly the spec of the killed run.
    """

    run_id: str
    model: dict[str, Any]
    num_classes: int
    class_weights: list[float]
    files: dict[str, list[str]]
    checkpoint_dir: str
    torch_threads: int
    checkpoint_every: int
    seed: int
    use_gpu: bool
    max_steps: int | None = None
    resume: bool = False
    eval_rows: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    comm: str = "single"
    reader: str = "pyarrow"

    def with_(self, **changes: Any) -> "RunSpec":
        return replace(self, **changes)
