"""Lightning callbacks: thin adapters that run the libraries at the right moment of a fit
(``talker.evaluation``: held-out scores, cross-driven videos), image panels, deformation heat maps, the conditioning
projector, step seeding, weight EMA, progress lines for logs."""

from talker.callbacks.cross_driven import CrossDrivenEvaluation
from talker.callbacks.deformation import DeformationMaps
from talker.callbacks.ema import ParameterEMA
from talker.callbacks.evaluation import EvaluationCallback
from talker.callbacks.images import ImageLogger
from talker.callbacks.progress import ProgressLog
from talker.callbacks.projector import ConditioningProjector
from talker.callbacks.seeding import StepSeed

__all__ = [
    "ConditioningProjector",
    "CrossDrivenEvaluation",
    "DeformationMaps",
    "EvaluationCallback",
    "ImageLogger",
    "ParameterEMA",
    "ProgressLog",
    "StepSeed",
]
