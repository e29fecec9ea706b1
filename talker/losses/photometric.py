"""Photometric losses and the opacity regulariser of the head stage."""

from __future__ import annotations

import torch
from torch import Tensor


def mse(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared colour error (R2-Talker eq. 11, averaged over rays)."""
    return torch.mean((pred - target) ** 2)


def opacity_entropy(opacity: Tensor, eps: float = 1e-5) -> Tensor:
    """Binary entropy of per-ray opacity (RAD-NeRF): pushes rays to be either empty or opaque."""
    a = opacity.clamp(eps, 1 - eps)
    return torch.mean(-a * torch.log2(a) - (1 - a) * torch.log2(1 - a))
