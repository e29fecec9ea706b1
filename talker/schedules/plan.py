"""Where the training stages begin and end: the one place that turns paper steps into real steps.

The papers count steps at full length (R2-Talker: 240K); ``schedule.scale`` shrinks every count at
once so that a CPU run keeps the schedule's shape. The config's ``${steps:...}`` resolver
(``trainer.max_steps``), the stage boundaries, the learning-rate shapes and the level schedules all
convert through :class:`StagePlan`.

Example (R2-Talker's quickstart: 1/100 of the schedule, lips from paper step 200K):
    >>> plan = StagePlan(head_steps=240_000, lips_start=200_000, torso_steps=0, scale=0.01)
    >>> plan.stages, plan.span("lips"), plan.end
    (('head', 'lips'), StageSpan(start=2000, end=2400, paper_length=40000), 2400)
    >>> [plan.stage(step) for step in (0, 1999, 2000)]
    ['head', 'head', 'lips']
"""

from __future__ import annotations

from dataclasses import dataclass


def real_steps(paper_steps: float, scale: float) -> int:
    """Real steps for ``paper_steps`` at ``scale`` (at least one)."""
    return max(1, round(paper_steps * scale))


@dataclass(frozen=True)
class StageSpan:
    """A stage's real steps ``[start, end)`` and its length in paper steps."""

    start: int
    end: int
    paper_length: float


@dataclass(frozen=True)
class StagePlan:
    """The stages of a head fit, in paper steps, and real steps per paper step.

    ``head_steps`` covers the head and lips stages together; the lips stage starts at ``lips_start``
    when ``lips`` is true (``lips_start`` None: no lips stage either); the torso stage follows for
    ``torso_steps`` (0: none).
    """

    head_steps: int
    lips_start: int | None
    torso_steps: int
    scale: float
    lips: bool = True

    def real(self, paper_step: float) -> int:
        """The real step a paper step count corresponds to."""
        return real_steps(paper_step, self.scale)

    def paper(self, step: int) -> float:
        """The paper's step count that real ``step`` corresponds to."""
        return step / self.scale

    @property
    def lips_begin(self) -> int | None:
        """Paper step where the lips stage begins (None: no lips stage)."""
        return self.lips_start if self.lips else None

    @property
    def stages(self) -> tuple[str, ...]:
        """The stages this plan runs, in order."""
        return ("head",) + (("lips",) if self.lips_begin is not None else ()) + (("torso",) if self.torso_steps > 0 else ())

    @property
    def head_stage_end(self) -> int:
        """First real step after the head stage proper (the lips stage or the torso stage begins)."""
        return self.real(self.lips_begin if self.lips_begin is not None else self.head_steps)

    @property
    def end(self) -> int:
        """Real steps of the whole fit (``trainer.max_steps``)."""
        return self.real(self.head_steps + self.torso_steps)

    def stage(self, step: int) -> str:
        """The stage real ``step`` falls in."""
        if self.torso_steps > 0 and step >= self.real(self.head_steps):
            return "torso"
        if self.lips_begin is not None and step >= self.real(self.lips_begin):
            return "lips"
        return "head"

    def span(self, stage: str) -> StageSpan:
        """Real steps and paper length of ``stage``."""
        if stage == "head":
            return StageSpan(0, self.head_stage_end, self.lips_begin if self.lips_begin is not None else self.head_steps)
        if stage == "lips" and self.lips_begin is not None:
            return StageSpan(self.real(self.lips_begin), self.real(self.head_steps), self.head_steps - self.lips_begin)
        if stage == "torso" and self.torso_steps > 0:
            return StageSpan(self.real(self.head_steps), self.end, self.torso_steps)
        raise KeyError(f"no {stage} stage in {self}")
