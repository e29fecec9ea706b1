"""Step-driven schedules: the stage plan (paper steps -> real steps), hash-level masks and
learning-rate shapes."""

from talker.schedules.levels import AllLevels, LevelSchedule, ProgressiveLevels
from talker.schedules.lr import Constant, ExponentialDecay, LRSchedule, StepDecay
from talker.schedules.plan import StagePlan, StageSpan, real_steps

__all__ = [
    "AllLevels",
    "Constant",
    "ExponentialDecay",
    "LRSchedule",
    "LevelSchedule",
    "ProgressiveLevels",
    "StagePlan",
    "StageSpan",
    "StepDecay",
    "real_steps",
]
