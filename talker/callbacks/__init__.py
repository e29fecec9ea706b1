"""Lightning callbacks: evaluation (metrics.json) and image logging."""

from talker.callbacks.evaluation import EvaluationCallback, evaluate_module
from talker.callbacks.images import ImageLogger
from talker.callbacks.seeding import StepSeed

__all__ = ["EvaluationCallback", "ImageLogger", "StepSeed", "evaluate_module"]
