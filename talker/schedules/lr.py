"""Learning-rate schedules of the head module's stages: R2-Talker's step decay, the exponential
decay of RAD-NeRF and ER-NeRF.

A schedule maps a real training step and its stage to a multiplier of the initial learning rates.
Stage boundaries are paper steps times ``schedule.scale`` (:class:`StagePlan`), so a shortened run
keeps each schedule's shape.

Example (R2-Talker at full length: x0.1 at 150K, x0.01 at 180K, reset for the lips stage):
    >>> plan = StagePlan(head_steps=240_000, lips_start=200_000, torso_steps=0, scale=1.0)
    >>> [StepDecay().factor(s, stage, plan) for s, stage in ((0, "head"), (150_000, "head"), (200_000, "lips"))]
    [1.0, 0.1, 1.0]
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class StagePlan:
    """Where the head module's stages begin and end, in paper steps, and real steps per paper step.

    ``head_steps`` covers the head and lips stages together; ``lips_start`` is None without a lips
    stage; the torso stage follows for ``torso_steps``.
    """

    head_steps: int
    lips_start: int | None
    torso_steps: int
    scale: float

    def real(self, paper_step: float) -> int:
        """The real step a paper step count corresponds to (``talker.config`` rounds the same way)."""
        return max(1, round(paper_step * self.scale))

    def stage(self, step: int) -> str:
        """``"head"``, ``"lips"`` or ``"torso"`` at real ``step``."""
        if self.torso_steps > 0 and step >= self.real(self.head_steps):
            return "torso"
        if self.lips_start is not None and step >= self.real(self.lips_start):
            return "lips"
        return "head"

    @property
    def head_stage_end(self) -> int:
        """First real step after the head stage proper (the lips stage or the torso stage begins)."""
        return self.real(self.lips_start if self.lips_start is not None else self.head_steps)


class LRSchedule(ABC):
    """Multiplier of the initial learning rates (every parameter group alike)."""

    @abstractmethod
    def factor(self, step: int, stage: str, plan: StagePlan) -> float:
        """Multiplier at real ``step``, which falls in ``stage`` (``"head"``, ``"lips"``, ``"torso"``)."""


class StepDecay(LRSchedule):
    """R2-Talker (Sec. 3.4): ``gamma`` per milestone passed in the head stage (x0.1 at 150K, x0.01 at
    180K); the lips stage resets the rate to its initial value; the torso stage repeats the head's
    shape over its own length (milestones scaled by ``torso_steps / head_steps``).
    """

    def __init__(self, milestones: Sequence[int] = (150_000, 180_000), gamma: float = 0.1) -> None:
        self.milestones, self.gamma = tuple(milestones), gamma

    def factor(self, step: int, stage: str, plan: StagePlan) -> float:
        if stage == "lips":
            return 1.0
        if stage == "torso":
            into = step - plan.real(plan.head_steps)
            ratio = plan.torso_steps / plan.head_steps
            return self.gamma ** sum(into >= plan.real(m * ratio) for m in self.milestones)
        return self.gamma ** sum(step >= plan.real(m) for m in self.milestones)


class ExponentialDecay(LRSchedule):
    """RAD-NeRF and ER-NeRF (torch-ngp's ``LambdaLR``): the rate decays exponentially within each run.

    - head stage: ``head ** (step / head_stage_end)`` (RAD-NeRF: 0.1 over its 200K head steps);
    - lips stage: ``lips ** (step / end of the lips stage)``: their fine-tuning run resumes the step
      count and the scheduler with a new decay (RAD-NeRF and ER-NeRF: 0.05), so it starts at
      ``lips ** (lips_start / head_steps)`` (0.09 for RAD-NeRF);
    - torso stage: ``torso ** (steps into the stage / its length)`` (their torso is a fresh run).
    """

    def __init__(self, head: float = 0.1, lips: float = 0.05, torso: float = 0.1) -> None:
        self.head, self.lips, self.torso = head, lips, torso

    def factor(self, step: int, stage: str, plan: StagePlan) -> float:
        if stage == "torso":
            start = plan.real(plan.head_steps)
            return self.torso ** ((step - start) / max(1, plan.real(plan.head_steps + plan.torso_steps) - start))
        if stage == "lips":
            return self.lips ** (step / plan.real(plan.head_steps))
        return self.head ** (step / plan.head_stage_end)
