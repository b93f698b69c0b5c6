"""Quantized variants of the multi-task model.

``multitask-int8``: dynamic int8 quantization of a trained model's encoder linear layers (weights
stored as int8 with a scale per output channel, activations quantized on the fly per batch), for
CPU inference, with no retraining (``torch.ao.quantization.quantize_dynamic``). The embeddings,
layer norms and the heads stay in float32: the heads are a few thousand weights, and they were
fitted to the encoder's exact outputs.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn


# What quantize_int8 does, recorded on each version: a version quantized another way is not up to date.
METHOD = "dynamic-int8 per-channel, encoder linear layers"


def quantize_int8(model: nn.Module, prefix: str = "encoder.") -> nn.Module:
    """``model`` (eval mode) with each ``nn.Linear`` under ``prefix`` replaced by its dynamically
    quantized int8 counterpart, weights quantized per output channel."""
    from torch.ao.quantization import per_channel_dynamic_qconfig

    spec = {name: per_channel_dynamic_qconfig for name, module in model.named_modules()
            if isinstance(module, nn.Linear) and name.startswith(prefix)}
    if not spec:
        raise ValueError(f"no linear layers under '{prefix}' to quantize")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch points at torchao for new code; the eager API is what this needs
        return torch.ao.quantization.quantize_dynamic(model.eval(), qconfig_spec=spec, dtype=torch.qint8)
