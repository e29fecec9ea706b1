"""Lightning callbacks: evaluation (metrics.json, speed.json), cross-driven evaluation, image panels,
conditioning projector, step seeding, weight EMA, progress lines for logs."""

from talker.callbacks.cross_driven import CrossDrivenEvaluation, MotionRun
from talker.callbacks.ema import ParameterEMA
from talker.callbacks.evaluation import EvaluationCallback, evaluate_module, score_frames
from talker.callbacks.images import ImageLogger
from talker.callbacks.progress import ProgressLog
from talker.callbacks.projector import ConditioningProjector
from talker.callbacks.seeding import StepSeed

__all__ = [
    "ConditioningProjector",
    "CrossDrivenEvaluation",
    "EvaluationCallback",
    "ImageLogger",
    "MotionRun",
    "ParameterEMA",
    "ProgressLog",
    "StepSeed",
    "evaluate_module",
    "score_frames",
]
