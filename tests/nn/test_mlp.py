"""The modulatable MLP shared by fields and conditioning strategies."""

from __future__ import annotations

import torch

from talker.nn import MLP


def test_modulation_is_h_times_one_plus_scale_plus_shift() -> None:
    mlp = MLP(4, 2, hidden_dim=3, num_layers=2, bias=False)
    x = torch.randn(5, 4)
    scale, shift = torch.tensor([0.5, -1.0, 2.0]), torch.tensor([0.1, 0.2, -0.3])
    h = x @ mlp.layers[0].weight.T
    expected = torch.relu(h * (1 + scale) + shift) @ mlp.layers[1].weight.T
    torch.testing.assert_close(mlp(x, [scale], [shift]), expected)
