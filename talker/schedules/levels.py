"""Which positional hash levels are active at a step (R2-Talker's conditional progressive optimisation).

Schedules count in *paper steps* (the step counts the papers give); the LightningModule converts
its global step with ``schedule.scale`` so a shortened CPU run keeps the schedule's shape.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from talker.encoders.base import LevelEncoder


class LevelSchedule(nn.Module):
    """Base: a step-driven mask over hash levels, written into an encoder's ``level_mask``.

    The mask is a pure function of the step and is stored in the encoder's ``level_mask`` buffer,
    so a checkpoint carries it and resuming reproduces it exactly.
    """

    def active_levels(self, paper_step: float, num_levels: int) -> int:
        raise NotImplementedError

    def mask_at(self, paper_step: float, num_levels: int) -> Tensor:
        active = max(0, min(num_levels, self.active_levels(paper_step, num_levels)))
        return (torch.arange(num_levels) < active).float()

    def apply(self, encoder: LevelEncoder, paper_step: float) -> None:
        encoder.level_mask.copy_(self.mask_at(paper_step, encoder.num_levels))


class AllLevels(LevelSchedule):
    """Every level from the first step (the default of instant-NGP and RAD-NeRF)."""

    def active_levels(self, paper_step: float, num_levels: int) -> int:
        return num_levels


class ProgressiveLevels(LevelSchedule):
    """Coarse-to-fine: ``start_levels`` levels at step 0, one more every ``every`` paper steps."""

    def __init__(self, start_levels: int = 4, every: int = 5000) -> None:
        super().__init__()
        if start_levels < 1 or every < 1:
            raise ValueError(f"ProgressiveLevels needs start_levels >= 1 and every >= 1, got {start_levels}, {every}")
        self.start_levels, self.every = start_levels, every

    def active_levels(self, paper_step: float, num_levels: int) -> int:
        return self.start_levels + int(paper_step // self.every)
