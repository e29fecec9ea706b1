"""LPIPS as a training loss (the lips stage): lpips' AlexNet v0.1, weights from torch hub's cache
(downloaded there when the fit starts, unless offline)."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn

from talker.errors import TalkerError
from talker.metrics.base import MetricUnavailable
from talker.metrics.perceptual import load_lpips
from talker.metrics.weights import find_weights
from talker.weights import LPIPS_ALEXNET


class PerceptualWeightsMissing(TalkerError, RuntimeError):
    """The LPIPS backbone cannot be loaded; the message names the file and where to put it."""


def lpips_weights_file(weights: str | Path | None = None) -> Path:
    """The AlexNet file the lips stage will load (downloaded first if missing and online), or
    :class:`PerceptualWeightsMissing`."""
    try:
        return find_weights(LPIPS_ALEXNET, weights)
    except MetricUnavailable as exc:
        raise PerceptualWeightsMissing(f"lips stage (0.01 x LPIPS on a lip patch): {exc}") from exc


class LPIPSLoss(nn.Module):
    """``(pred, target) [B, 3, H, W] in [0, 1] -> mean LPIPS``; frozen, differentiable in ``pred``."""

    def __init__(self, weights: str | Path | None = None) -> None:
        super().__init__()
        lpips_weights_file(weights)
        try:
            self.net = load_lpips(str(weights) if weights else None)
        except MetricUnavailable as exc:
            raise PerceptualWeightsMissing(f"lips stage: {exc}") from exc
        self.net.requires_grad_(False)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return self.net(pred * 2 - 1, target * 2 - 1).mean()

    def train(self, mode: bool = True) -> LPIPSLoss:  # lpips stays in eval mode (no dropout)
        super().train(False)
        return self


__all__ = ["LPIPSLoss", "PerceptualWeightsMissing", "lpips_weights_file"]
