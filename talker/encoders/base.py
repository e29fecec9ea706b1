"""What a field may ask of its positional encoder, and what a level schedule may ask of it."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor


@runtime_checkable
class Encoder(Protocol):
    """``[..., input_dim]`` points in ``[-bound, bound]`` -> ``[..., output_dim]`` features.

    :class:`~talker.encoders.HashGrid` and :class:`~talker.encoders.TriPlaneHashGrid` are.
    """

    input_dim: int
    bound: float

    @property
    def output_dim(self) -> int: ...

    def __call__(self, x: Tensor) -> Tensor: ...


@runtime_checkable
class LevelEncoder(Encoder, Protocol):
    """A multi-resolution encoder whose levels can be switched off: ``level_mask [num_levels]`` (a
    persistent buffer, so checkpoints carry it) scales each level's features
    (``talker.schedules.levels`` writes it)."""

    num_levels: int
    level_mask: Tensor
