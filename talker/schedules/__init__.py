"""Step-driven schedules (hash-level masks)."""

from talker.schedules.levels import AllLevels, LevelSchedule, ProgressiveLevels

__all__ = ["AllLevels", "LevelSchedule", "ProgressiveLevels"]
