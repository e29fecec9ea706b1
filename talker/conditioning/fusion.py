"""Fusions: GLO concatenation and M-AGLO per-layer affine modulation (R2-Talker Sec. 3.3, Fig. 5)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from talker.conditioning.base import Conditioning, Fusion
from talker.nn.mlp import MLP


class ConcatFusion(Fusion):
    """GLO: ``h_cond`` (optionally through an MLP to ``out_dim``) is concatenated to the field input.

    Args:
        out_dim: width of the concatenated code; ``None`` concatenates ``h_cond`` unchanged.
        hidden_dim, num_layers: the MLP that maps ``h_cond`` to ``out_dim`` (ignored if out_dim is None).
    """

    def __init__(self, out_dim: int | None = None, hidden_dim: int = 128, num_layers: int = 3) -> None:
        super().__init__()
        self.out_dim, self.hidden_dim, self.num_layers = out_dim, hidden_dim, num_layers
        self.mlp: nn.Module = nn.Identity()

    def vector_dim(self, cond_dim: int) -> int:
        return cond_dim if self.out_dim is None else self.out_dim

    def build(self, cond_dim: int, modulation_widths: Sequence[int], position_dim: int = 0) -> None:
        if self.out_dim is not None:
            self.mlp = MLP(cond_dim, self.out_dim, self.hidden_dim, self.num_layers)

    def forward(self, h_cond: Tensor) -> Conditioning:
        return Conditioning(vector=self.mlp(h_cond))


class AffineFusion(Fusion):
    """M-AGLO: for every modulated hidden layer an FC branch maps ``h_cond`` to ``(scale, shift)``.

    Each branch is an ``num_layers``-layer MLP of width ``hidden_dim`` with output ``2 * width_l``
    (R2-Talker Table 6: 3 layers, hidden 128). The last layer starts at zero so that training
    begins from the unmodulated field (``h * (1 + 0) + 0``).
    """

    def __init__(self, hidden_dim: int = 128, num_layers: int = 3) -> None:
        super().__init__()
        self.hidden_dim, self.num_layers = hidden_dim, num_layers
        self.branches = nn.ModuleList()

    def vector_dim(self, cond_dim: int) -> int:
        return 0

    def build(self, cond_dim: int, modulation_widths: Sequence[int], position_dim: int = 0) -> None:
        if not modulation_widths:
            raise ValueError("AffineFusion needs a field with at least one modulatable hidden layer")
        self.branches = nn.ModuleList(
            MLP(cond_dim, 2 * width, self.hidden_dim, self.num_layers) for width in modulation_widths
        )
        for branch in self.branches:
            nn.init.zeros_(branch.layers[-1].weight)
            nn.init.zeros_(branch.layers[-1].bias)

    def forward(self, h_cond: Tensor) -> Conditioning:
        scales, shifts = zip(*(branch(h_cond).chunk(2, dim=-1) for branch in self.branches))
        return Conditioning(scales=scales, shifts=shifts)
