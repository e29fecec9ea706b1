"""Step-driven schedules: hash-level masks and learning-rate multipliers."""

from talker.schedules.levels import AllLevels, LevelSchedule, ProgressiveLevels
from talker.schedules.lr import ExponentialDecay, LRSchedule, StagePlan, StepDecay

__all__ = ["AllLevels", "ExponentialDecay", "LRSchedule", "LevelSchedule", "ProgressiveLevels", "StagePlan", "StepDecay"]
