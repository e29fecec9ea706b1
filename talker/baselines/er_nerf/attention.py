"""ER-NeRF's audio-spatial region attention (Sec. 3.2), as a conditioning fusion."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from talker.conditioning.base import Conditioning, Fusion
from talker.nn.mlp import MLP


class RegionAttention(Fusion):
    """The audio code ``h_cond [C]`` enters each point reweighted channel by channel by its region.

    ``spatial(x, pos) = h_cond * gate(pos)``: ``gate`` is an MLP of the point's positional (tri-plane)
    features with ``C`` outputs, so each region of the face picks the audio channels that move it;
    the ``[N, C]`` result joins the field input. As in ER-NeRF the gate is not squashed (a plain
    linear output) and its MLP has no biases.

    Args:
        hidden_dim, num_layers: the gate MLP (ER-NeRF: 64, 2).
    """

    def __init__(self, hidden_dim: int = 64, num_layers: int = 2) -> None:
        super().__init__()
        self.hidden_dim, self.num_layers = hidden_dim, num_layers
        self.gate: MLP | None = None

    def vector_dim(self, cond_dim: int) -> int:
        return 0

    def spatial_dim(self, cond_dim: int) -> int:
        return cond_dim

    def build(self, cond_dim: int, modulation_widths: Sequence[int], position_dim: int = 0) -> None:
        if position_dim <= 0:
            raise ValueError(
                "RegionAttention reads the field's positional features: bind it with position_dim > 0"
            )
        self.gate = MLP(position_dim, cond_dim, self.hidden_dim, self.num_layers, bias=False)

    def attention(self, pos: Tensor) -> Tensor:
        """``[N, P] -> [N, C]``: the per-point channel weights."""
        assert self.gate is not None, "RegionAttention.build was not called"
        return self.gate(pos)

    def forward(self, h_cond: Tensor) -> Conditioning:
        def spatial(x: Tensor, pos: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
            return h_cond.to(pos.dtype) * self.attention(pos), {}

        return Conditioning(spatial=spatial)
