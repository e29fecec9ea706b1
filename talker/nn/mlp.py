"""MLPs whose hidden layers can be modulated by a per-layer affine transform (FiLM / M-AGLO)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class MLP(nn.Module):
    """``num_layers`` linear layers with ReLU between them.

    ``forward(x, scales, shifts)`` applies ``h * (1 + scale) + shift`` to the output of every
    hidden layer before its ReLU (R2-Talker eq. 10) when per-layer ``scales``/``shifts`` are given.
    Each is broadcast against ``h`` of shape ``[N, width]`` (a ``[width]`` global code or
    ``[N, width]`` per point).

    Example:
        >>> mlp = MLP(8, 4, hidden_dim=16, num_layers=3)
        >>> mlp.hidden_widths
        [16, 16]
        >>> mlp(torch.zeros(5, 8), scales=[torch.ones(16)] * 2, shifts=[torch.zeros(16)] * 2).shape
        torch.Size([5, 4])
    """

    def __init__(self, dim_in: int, dim_out: int, hidden_dim: int, num_layers: int, bias: bool = True) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"MLP needs at least one layer, got num_layers={num_layers}")
        dims = [dim_in] + [hidden_dim] * (num_layers - 1) + [dim_out]
        self.layers = nn.ModuleList(nn.Linear(a, b, bias=bias) for a, b in zip(dims[:-1], dims[1:]))
        self.dim_in, self.dim_out = dim_in, dim_out

    @property
    def hidden_widths(self) -> list[int]:
        return [layer.out_features for layer in self.layers[:-1]]

    def forward(self, x: Tensor, scales: Sequence[Tensor] = (), shifts: Sequence[Tensor] = ()) -> Tensor:
        if len(scales) != len(shifts) or len(scales) not in (0, len(self.layers) - 1):
            raise ValueError(
                f"MLP with {len(self.layers) - 1} hidden layers got {len(scales)} scales and {len(shifts)} shifts"
            )
        for i, layer in enumerate(self.layers[:-1]):
            x = layer(x)
            if scales:
                x = x * (1 + scales[i]) + shifts[i]
            x = F.relu(x)
        return self.layers[-1](x)


class _TruncExp(torch.autograd.Function):
    """``exp`` whose gradient uses ``exp(min(x, 15))`` so that large densities cannot explode.

    Computed in fp32 whatever the input dtype: under fp16 autocast ``exp`` overflows past 11."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return torch.exp(x.float())

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return (grad * torch.exp(x.float().clamp(max=15))).to(x.dtype)


def trunc_exp(x: Tensor) -> Tensor:
    """Density activation of instant-NGP: ``exp`` with a clamped gradient."""
    return _TruncExp.apply(x)
