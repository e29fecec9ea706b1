"""The training stages of a talking head, as objects the head module is given (``model.stages``):
head, lips fine-tuning, torso. Their boundaries come from ``talker.schedules.StagePlan``."""

from talker.stages.base import Diverged, Stage, StepContext
from talker.stages.head import HeadStage, LipsStage
from talker.stages.torso import TorsoStage

__all__ = ["Diverged", "HeadStage", "LipsStage", "Stage", "StepContext", "TorsoStage"]
