"""Held-out landmark errors of a predicted sequence (in the dataset's landmark units)."""

from __future__ import annotations

from torch import Tensor

from talker.motion.sync import MOUTH


def landmark_errors(pred: Tensor, target: Tensor) -> dict[str, float]:
    """Mean Euclidean distance per landmark and frame: all 68 (``l2``) and the 20 lip points (``mouth_l2``)."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    dist = (pred - target).norm(dim=-1)  # [T, 68]
    return {"l2": dist.mean().item(), "mouth_l2": dist[..., MOUTH].mean().item()}
