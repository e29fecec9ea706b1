"""The field contract: what the renderer and the LightningModule may ask of a radiance field."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from torch import Tensor, nn

from talker.conditioning.base import Conditioning


@dataclass
class FieldOutput:
    """Per-point outputs: ``sigma [N]`` density and ``rgb [N, 3]`` colour in ``[0, 1]``."""

    sigma: Tensor
    rgb: Tensor


class Field(nn.Module, ABC):
    """A conditioned radiance field ``(x, d, cond) -> (sigma, rgb)``.

    Positions ``x [N, 3]`` are in the field's box ``[-bound, bound]^3``; directions ``d [N, 3]`` are
    unit vectors. ``modulation_widths`` lists the widths of the hidden layers a fusion may
    modulate (empty if none).
    """

    bound: float

    @property
    @abstractmethod
    def modulation_widths(self) -> list[int]:
        """Widths of the hidden layers that accept per-layer scale and shift."""

    @abstractmethod
    def density(self, x: Tensor, cond: Conditioning) -> Tensor:
        """``[N, 3] -> [N]`` density (used by the occupancy grid)."""

    @abstractmethod
    def forward(self, x: Tensor, d: Tensor, cond: Conditioning) -> FieldOutput:
        """``[N, 3], [N, 3] -> FieldOutput``."""
