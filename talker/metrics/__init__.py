"""Metrics: one implementation of each, shared by every arm, baseline and external render."""

from talker.metrics.base import EvalFrame, Metric
from talker.metrics.evaluator import EvalResult, Evaluator
from talker.metrics.psnr import PSNR, psnr

__all__ = ["EvalFrame", "EvalResult", "Evaluator", "Metric", "PSNR", "psnr"]
