"""BitLinear layers: ternary weights, 8-bit activations, the straight-through gradient, packed storage."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from reviewlake.quantization import BitLinear, pack, quantize_activations, ternary, to_bitlinear, unpack


def test_weights_become_ternary_times_their_mean_absolute_value() -> None:
    w = torch.randn(64, 48)
    q, scale = ternary(w)
    assert set(q.unique().tolist()) <= {-1.0, 0.0, 1.0} and len(q.unique()) == 3
    assert scale.item() == pytest.approx(w.abs().mean().item())
    # Each weight goes to the nearest of -scale, 0, +scale.
    assert torch.equal(q, (w / scale).round().clamp(-1, 1))


def test_activations_take_at_most_256_levels_per_token_within_half_a_step() -> None:
    x = torch.randn(5, 300) * torch.tensor([[0.01], [1.0], [3.0], [100.0], [7.0]])
    xq = quantize_activations(x, 8)
    step = x.abs().amax(-1, keepdim=True) / 127
    assert all(len(row.unique()) <= 256 for row in xq)
    assert ((xq - x).abs() <= step / 2 + 1e-6).all()
    assert torch.allclose(xq.abs().amax(-1), x.abs().amax(-1))  # the largest value is exact


def test_the_gradient_passes_straight_through_both_roundings() -> None:
    torch.manual_seed(0)
    bit = BitLinear(16, 4)
    x = torch.randn(8, 16, requires_grad=True)
    bit(x).sum().backward()
    # Straight-through: d/dx is the quantized weight's, d/dW the quantized inputs', as in a plain linear.
    q, scale = ternary(bit.weight.detach())
    assert torch.allclose(x.grad, (q * scale).sum(0).expand(8, 16), atol=1e-5)
    assert torch.allclose(bit.weight.grad, quantize_activations(x.detach(), 8).sum(0).expand(4, 16), atol=1e-5)
    assert not torch.allclose(bit.weight.grad, x.detach().sum(0).expand(4, 16), atol=1e-5)  # not the float inputs


def test_a_model_packs_four_weights_a_byte_and_loads_back_the_same_outputs() -> None:
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(40, 30), nn.ReLU(), nn.Linear(30, 3))
    to_bitlinear(model)
    assert all(isinstance(model[i], BitLinear) for i in (0, 2))
    x = torch.randn(6, 40)
    before = model.eval()(x)
    buffer = io.BytesIO()
    state = pack(model)
    assert state["0.weight"].dtype == torch.uint8 and state["0.weight"].numel() == 40 * 30 // 4
    torch.save(state, buffer)
    fresh = to_bitlinear(nn.Sequential(nn.Linear(40, 30), nn.ReLU(), nn.Linear(30, 3)))
    unpack(fresh, torch.load(io.BytesIO(buffer.getvalue())))
    assert torch.allclose(fresh.eval()(x), before, atol=1e-6)
    assert set(fresh[0].weight.unique().tolist()) <= {-1.0, 0.0, 1.0}


def test_unused_pooler_stays_a_plain_linear() -> None:
    from reviewlake.encoders import load_encoder
    from reviewlake.families.multitask import MultiTaskModel

    model = to_bitlinear(MultiTaskModel(load_encoder("tiny"), 2, 10))
    linears = {n: type(m) for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    assert linears["encoder.pooler.dense"] is nn.Linear
    assert all(t is BitLinear for n, t in linears.items() if not n.startswith("encoder.pooler"))
    assert {"sentiment", "rating", "aspects", "encoder.encoder.layer.0.attention.self.query"} <= set(linears)
