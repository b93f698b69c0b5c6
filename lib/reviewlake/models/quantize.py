"""Quantized variants of the multi-task model.

``multitask-int8``: dynamic int8 quantization of a trained model's linear layers (weights stored as
int8 with a scale per layer, activations quantized on the fly per batch), for CPU inference, with
no retraining (``torch.ao.quantization.quantize_dynamic``; the embeddings and layer norms stay in
float32).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn


def quantize_int8(model: nn.Module) -> nn.Module:
    """``model`` with every ``nn.Linear`` replaced by its dynamically quantized int8 counterpart (eval mode)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch points at torchao for new code; the eager API is what this needs
        return torch.ao.quantization.quantize_dynamic(model.eval(), {nn.Linear}, dtype=torch.qint8)
