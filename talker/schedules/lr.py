"""Learning-rate shapes of the training stages: R2-Talker's step decay, the exponential decay of
RAD-NeRF and ER-NeRF, and a constant rate.

Each stage owns one shape (``model.stages.<stage>.lr``). A shape maps a real training step inside
its stage to a multiplier of the initial learning rates; the stage's boundaries come from the
:class:`~talker.schedules.StagePlan`, so a shortened run keeps each shape.

Example (R2-Talker at full length: x0.1 at 150K, x0.01 at 180K; the lips stage starts over):
    >>> plan = StagePlan(head_steps=240_000, lips_start=200_000, torso_steps=0, scale=1.0)
    >>> [StepDecay().factor(s, plan.span("head"), plan) for s in (0, 150_000, 180_000)]
    [1.0, 0.1, 0.010000000000000002]
    >>> Constant().factor(200_000, plan.span("lips"), plan)
    1.0
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from talker.schedules.plan import StagePlan, StageSpan


class LRSchedule(ABC):
    """Multiplier of the initial learning rates (every parameter group alike) within one stage."""

    @abstractmethod
    def factor(self, step: int, span: StageSpan, plan: StagePlan) -> float:
        """Multiplier at real ``step``, which falls in the stage spanning ``span``."""


class Constant(LRSchedule):
    """The initial rates throughout (R2-Talker's lips stage: the rate is reset to its initial value)."""

    def factor(self, step: int, span: StageSpan, plan: StagePlan) -> float:
        return 1.0


class StepDecay(LRSchedule):
    """R2-Talker (Sec. 3.4): ``gamma`` per milestone passed, milestones in paper steps from the stage's
    start (x0.1 at 150K, x0.01 at 180K).

    With ``stretch`` the milestones are the head schedule's and are stretched to this stage's length
    (``span.paper_length / plan.head_steps``): the torso stage repeats the head's shape. With
    ``from_run_start`` they count from the fit's first step: a stage that continues the head's decay
    where the head stage left it (LokiTalk's LPIPS in the last 20 % of its one training).
    """

    def __init__(
        self, milestones: Sequence[int] = (150_000, 180_000), gamma: float = 0.1, stretch: bool = False,
        from_run_start: bool = False,
    ) -> None:
        self.milestones, self.gamma, self.stretch, self.from_run_start = tuple(milestones), gamma, stretch, from_run_start

    def factor(self, step: int, span: StageSpan, plan: StagePlan) -> float:
        into = step - (0 if self.from_run_start else span.start)
        if self.stretch:
            ratio = span.paper_length / plan.head_steps
            return self.gamma ** sum(into >= plan.real(m * ratio) for m in self.milestones)
        return self.gamma ** sum(into >= plan.real(m) for m in self.milestones)


class ExponentialDecay(LRSchedule):
    """RAD-NeRF and ER-NeRF (torch-ngp's ``LambdaLR``): ``rate ** (steps done / steps to the stage's end)``.

    Steps are counted from the stage's start, or with ``from_run_start`` from the fit's first step:
    their lips fine-tuning resumes the step count and the scheduler with a new decay (RAD-NeRF and
    ER-NeRF: 0.05), so it starts at ``0.05 ** (lips_start / head_steps)`` (0.09 for RAD-NeRF).
    Their head (0.1 over RAD-NeRF's 200K steps) and torso (a fresh run) count from the stage's start.
    """

    def __init__(self, rate: float = 0.1, from_run_start: bool = False) -> None:
        self.rate, self.from_run_start = rate, from_run_start

    def factor(self, step: int, span: StageSpan, plan: StagePlan) -> float:
        origin = 0 if self.from_run_start else span.start
        return self.rate ** ((step - origin) / max(1, span.end - origin))
