"""The field contract: what the renderer and the LightningModule may ask of a radiance field."""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from talker.conditioning.base import Conditioning
from talker.encoders.base import Encoder
from talker.fields.inputs import Frame


@dataclass
class FieldOutput:
    """Per-point outputs: ``sigma [N]`` density and ``rgb [N, 3]`` colour in ``[0, 1]``.

    ``extras`` holds further per-point values (``[N]`` or ``[N, C]``: ER-NeRF's uncertainty, the
    spatial conditioning's ambient coordinates) that training renders return per sample
    (``RenderOutput.point_values``) and composited with the colour's weights (``RenderOutput.extras``).
    """

    sigma: Tensor
    rgb: Tensor
    extras: dict[str, Tensor] = field(default_factory=dict)


class Field(nn.Module, ABC):
    """A conditioned radiance field ``(x, d, cond, frame) -> (sigma, rgb)``.

    Positions ``x [N, 3]`` are in the field's box ``[-bound, bound]^3``; directions ``d [N, 3]`` are
    unit vectors. ``cond`` is the conditioning strategy's output for the frame; ``frame`` holds the
    frame's own inputs that the field declares in ``frame_keys`` (see ``talker.fields.inputs``).
    ``modulation_widths`` lists the widths of the hidden layers a fusion may modulate (empty if
    none).

    ``encoder`` is the field's positional encoder: the level schedules mask its levels when it is a
    :class:`~talker.encoders.LevelEncoder`, and a spatial conditioning reads its features
    (``position_dim`` wide).
    """

    encoder: Encoder
    bound: float
    frame_keys: tuple[str, ...] = ()
    # Width of the positional features a spatial conditioning reads (0: the field exposes none).
    position_dim: int = 0

    @property
    @abstractmethod
    def modulation_widths(self) -> list[int]:
        """Widths of the hidden layers that accept per-layer scale and shift."""

    @abstractmethod
    def density(self, x: Tensor, cond: Conditioning, frame: Frame | None = None) -> Tensor:
        """``[N, 3] -> [N]`` density (used by the occupancy grid)."""

    @abstractmethod
    def forward(self, x: Tensor, d: Tensor, cond: Conditioning, frame: Frame | None = None) -> FieldOutput:
        """``[N, 3], [N, 3] -> FieldOutput``."""

    def bind(self, cond: Conditioning, frame: Frame | None = None) -> Callable[[Tensor, Tensor], FieldOutput]:
        """The field for one frame, ``(x [N, 3], d [N, 3]) -> FieldOutput``, for rendering without
        gradients (``talker.inference``): whatever does not depend on the point is computed here, once
        per frame, not once per batch of points. ``extras`` may be left out.

        Default: the field itself with ``cond`` and ``frame`` bound (nothing precomputed)."""
        return functools.partial(self, cond=cond, frame=frame)

    def densities(
        self, x: Tensor, conds: Sequence[Conditioning], frames: Sequence[Frame | None] | None = None
    ) -> Tensor:
        """``[N, 3] -> [B, N]``: density under each of ``B`` conditions (occupancy updates).

        Fields override this to share condition-independent work (the positional encoding)."""
        frames = frames if frames is not None else [None] * len(conds)
        return torch.stack([self.density(x, cond, frame) for cond, frame in zip(conds, frames)])
