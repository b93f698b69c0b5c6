"""Quantized layers of the multi-task family: BitLinear (``multitask-bitlinear``) and dynamic int8
(``multitask-int8``).

BitLinear: the multi-task model with ternary weights and 8-bit activations.

As in BitNet b1.58 (the 14M seed's "1-bit BERT"): each linear layer's weight matrix is quantized to
{-1, 0, +1} times one scale, the mean absolute value of its weights (absmean); its input activations
are quantized to signed 8-bit integers per token, scaled by their maximum absolute value (absmax).
Training keeps float weights and passes gradients straight through both roundings (the
straight-through estimator: the forward pass sees the quantized values, the backward pass treats
quantization as the identity). Embeddings, layer norms and biases stay float32.

A trained model is frozen (weights replaced by their ternary values and the scale kept) and saved
packed: four ternary weights per byte, so the linear layers take 1/16 of their float32 size on disk.
Inference here dequantizes to float matmuls (PyTorch has no ternary kernel): the size is real, the
speed is not a ternary kernel's.

Dynamic int8: a trained model's encoder linear layers quantized (weights stored as int8 with a scale
per output channel, activations quantized on the fly per batch), for CPU inference, with no
retraining (``torch.ao.quantization.quantize_dynamic``). The embeddings, layer norms and the heads
stay in float32: the heads are a few thousand weights, and they were fitted to the encoder's exact
outputs.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

# What to_bitlinear does, recorded on each version.
BITLINEAR_METHOD = "bitlinear: ternary absmean weights per matrix, 8-bit absmax activations per token, STE; encoder and heads"


def ternary(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(q, scale)``: ``q`` in {-1, 0, 1} with ``q * scale`` the absmean-quantized ``weight``."""
    scale = weight.abs().mean().clamp(min=1e-5)
    return (weight / scale).round().clamp(-1, 1), scale


def quantize_activations(x: torch.Tensor, bits: int) -> torch.Tensor:
    """``x`` rounded to ``bits``-bit signed integers per row of its last dimension (absmax scaling),
    returned dequantized."""
    top = 2 ** (bits - 1) - 1
    scale = top / x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-5)
    return (x * scale).round().clamp(-top - 1, top) / scale


class BitLinear(nn.Linear):
    """An ``nn.Linear`` whose forward pass uses ternary weights and ``activation_bits``-bit inputs."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation_bits: int = 8) -> None:
        super().__init__(in_features, out_features, bias)
        self.activation_bits = activation_bits
        self.frozen = False
        self.register_buffer("weight_scale", torch.ones(()), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Straight-through: value of the quantized tensor, gradient of the float one.
        xq = x + (quantize_activations(x, self.activation_bits) - x).detach()
        if self.frozen:  # weight holds the ternary values already
            return F.linear(xq, self.weight * self.weight_scale, self.bias)
        q, scale = ternary(self.weight)
        w = self.weight + (q * scale - self.weight).detach()
        return F.linear(xq, w, self.bias)

    @torch.no_grad()
    def freeze(self) -> None:
        """Replace the float weights by their ternary values (inference from here on)."""
        if not self.frozen:
            q, scale = ternary(self.weight)
            self.weight.copy_(q)
            self.weight_scale = scale.detach().clone()
            self.frozen = True


def to_bitlinear(model: nn.Module, activation_bits: int = 8, skip: tuple[str, ...] = ("encoder.pooler",)) -> nn.Module:
    """``model`` with every ``nn.Linear`` (except under the ``skip`` prefixes: BERT's unused pooler)
    replaced in place by a :class:`BitLinear` starting from its weights."""
    targets = [(name, module) for name, module in model.named_modules()
               if type(module) is nn.Linear and not name.startswith(skip)]
    if not targets:
        raise ValueError("no linear layers to replace")
    for name, module in targets:
        bit = BitLinear(module.in_features, module.out_features, module.bias is not None, activation_bits)
        bit.to(module.weight.device)
        with torch.no_grad():
            bit.weight.copy_(module.weight)
            if module.bias is not None:
                bit.bias.copy_(module.bias)
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, bit)
    return model


def bit_layers(model: nn.Module) -> dict[str, BitLinear]:
    return {name: m for name, m in model.named_modules() if isinstance(m, BitLinear)}


def pack(model: nn.Module) -> dict[str, Any]:
    """The state dict of a BitLinear ``model`` (frozen here) with each ternary weight matrix packed as
    2-bit codes, four per byte, beside its scale and shape."""
    state: dict[str, Any] = dict(model.state_dict())
    for name, layer in bit_layers(model).items():
        layer.freeze()
        codes = (layer.weight.detach().cpu().to(torch.int8) + 1).to(torch.uint8).flatten()
        codes = F.pad(codes, (0, (-len(codes)) % 4)).view(-1, 4)
        state[f"{name}.weight"] = codes[:, 0] | codes[:, 1] << 2 | codes[:, 2] << 4 | codes[:, 3] << 6
        state[f"{name}.weight_scale"] = layer.weight_scale.detach().cpu()
        state[f"{name}.weight_shape"] = torch.tensor(layer.weight.shape)
    return state


def unpack(model: nn.Module, state: dict[str, Any]) -> nn.Module:
    """Load what :func:`pack` saved into a BitLinear ``model`` (frozen: ternary weights and scales)."""
    state = dict(state)
    scales = {}
    for name in bit_layers(model):
        packed = state[f"{name}.weight"]
        shape = tuple(int(n) for n in state.pop(f"{name}.weight_shape"))
        codes = torch.stack([(packed >> shift) & 3 for shift in (0, 2, 4, 6)], dim=1).flatten()
        state[f"{name}.weight"] = (codes[:shape[0] * shape[1]].to(torch.float32) - 1).view(shape)
        scales[name] = state.pop(f"{name}.weight_scale")
    model.load_state_dict(state)
    for name, layer in bit_layers(model).items():
        layer.weight_scale = scales[name].to(layer.weight.device)
        layer.frozen = True
    return model


# What quantize_int8 does, recorded on each version: a version quantized another way is not up to date.
INT8_METHOD = "dynamic-int8 per-channel, encoder linear layers"


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
