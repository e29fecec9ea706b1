"""The stage contract: one training stage of a talking head (head, lips, torso).

A stage owns what differs between the paper's stages: its loss (``training_step``), what it adds
to the model before training (``setup``: the torso field), what it checks when the fit starts
(``check``: the lips stage's LPIPS weights), the parts of the model it leaves frozen
(``frozen``), whether the occupancy grid keeps being updated while it runs, and its
learning-rate shape (``lr_factor``). Its boundaries come from the :class:`~talker.schedules.StagePlan`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor, nn

from talker.head.model import TalkingHead
from talker.schedules.lr import LRSchedule
from talker.schedules.plan import StagePlan

Log = Callable[..., None]  # LightningModule.log's signature: (name, value, **options)


class Diverged(FloatingPointError):
    """The loss of a step is not finite (the module names the learning rates to lower)."""

    def __init__(self, step: int, value: float) -> None:
        super().__init__(f"training diverged at step {step}: the photometric loss is {value}")
        self.step, self.value = step, value


@dataclass
class StepContext:
    """What a stage's training step may read besides the model and the batch."""

    step: int  # the real (global) step
    plan: StagePlan
    log: Log


class Stage(ABC):
    """One training stage. ``name`` is the stage's key in the plan and in ``model.stages``."""

    name: ClassVar[str]
    # The head's density changes while this stage runs: keep the occupancy grid up to date.
    updates_occupancy: ClassVar[bool] = True

    def __init__(self, lr: LRSchedule) -> None:
        self.lr = lr

    def lr_factor(self, step: int, plan: StagePlan) -> float:
        """Multiplier of the initial learning rates at real ``step`` (inside this stage)."""
        return self.lr.factor(step, plan.span(self.name), plan)

    def setup(self, head: TalkingHead) -> None:
        """Add what this stage trains to the model, before training; default: nothing."""

    def check(self, plan: StagePlan, max_steps: int) -> None:
        """Fail at fit start, not hours later, when the stage will run and lacks something."""

    def on_step_start(self, head: TalkingHead, step: int) -> None:
        """Called before each of this stage's steps."""

    def frozen(self, head: TalkingHead) -> list[nn.Module]:
        """Parts of the model this stage does not train; default: none."""
        return []

    @abstractmethod
    def training_step(self, head: TalkingHead, batch: Mapping[str, Any], ctx: StepContext) -> Tensor | None:
        """The loss of one ray batch (None: nothing to learn from this batch)."""
