"""Metrics: one implementation of each, shared by every arm, baseline and external render.

Image quality: :class:`PSNR`, :class:`SSIM` (full frame, face, mouth), :class:`LPIPS`, :class:`FID`.
Condition use: :class:`ConditionGap` (mouth-box PSNR with each frame's own condition minus with another
frame's; tables mark a head below ``talker.reporting.tables.HEARING_THRESHOLD_DB`` as not using it), and
:class:`EyeConditionGap` (eyes-box PSNR with only the eye ratio swapped, for heads with an eye signal).
Lip motion: :class:`LMD` (MediaPipe landmarks), :class:`Sync` (SyncNet confidence / distance),
:class:`AUE` (MediaPipe blendshapes as action units).
Temporal stability: :class:`LandmarkJitter`, :class:`Flicker`, :class:`NeckSeam` (each also on the
ground truth, ``*_ref``).
Speed: :class:`SpeedProfile` (per-module times and FPS). Pretrained weights load from a configured
file or their standard cache, downloaded on first use (:mod:`talker.weights`); when missing offline,
a metric is reported unavailable with why.
"""

from talker.metrics.aue import AUE
from talker.metrics.base import EvalContext, EvalFrame, Metric, MetricUnavailable, MetricUnavailableWarning
from talker.metrics.condition import ConditionGap, EyeConditionGap
from talker.metrics.evaluator import EvalResult, Evaluator
from talker.metrics.fid import FID
from talker.metrics.lmd import LMD
from talker.metrics.perceptual import LPIPS
from talker.metrics.psnr import PSNR, psnr
from talker.metrics.speed import SpeedProfile
from talker.metrics.ssim import SSIM, ssim
from talker.metrics.sync import Sync
from talker.metrics.temporal import Flicker, LandmarkJitter, NeckSeam

__all__ = [
    "AUE",
    "FID",
    "LMD",
    "LPIPS",
    "PSNR",
    "SSIM",
    "ConditionGap",
    "EvalContext",
    "EvalFrame",
    "EvalResult",
    "Evaluator",
    "EyeConditionGap",
    "Flicker",
    "LandmarkJitter",
    "Metric",
    "MetricUnavailable",
    "MetricUnavailableWarning",
    "NeckSeam",
    "SpeedProfile",
    "Sync",
    "psnr",
    "ssim",
]
