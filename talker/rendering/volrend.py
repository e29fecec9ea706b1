"""Volume rendering along rays (R2-Talker eqs. 2-3), written for ``[rays, samples]`` tensors.

Example:
    >>> sigmas = torch.tensor([[0.0, 1e4, 1e4]])          # empty, then opaque
    >>> deltas = torch.full((1, 3), 0.1)
    >>> weights = render_weights(sigmas, deltas)
    >>> round(weights.sum().item(), 4)
    1.0
"""

from __future__ import annotations

import torch
from torch import Tensor


def render_weights(sigmas: Tensor, deltas: Tensor) -> Tensor:
    """Compositing weights ``w_i = T_i * (1 - exp(-sigma_i * delta_i))``.

    Args:
        sigmas: ``[R, S]`` densities (>= 0).
        deltas: ``[R, S]`` sample lengths ``t_{i+1} - t_i``.
    Returns:
        ``[R, S]`` weights; ``T_i = exp(-sum_{j<i} sigma_j delta_j)`` (eq. 3).
    """
    optical_depth = sigmas * deltas
    alphas = 1.0 - torch.exp(-optical_depth)
    # Exclusive cumulative sum: transmittance before sample i.
    accumulated = torch.cumsum(optical_depth, dim=-1) - optical_depth
    return torch.exp(-accumulated) * alphas


def accumulate(weights: Tensor, values: Tensor | None = None) -> Tensor:
    """``sum_i w_i v_i`` over samples: ``[R, S] x [R, S, C] -> [R, C]`` (``[R, 1]`` if values is None)."""
    if values is None:
        return weights.sum(dim=-1, keepdim=True)
    return (weights.unsqueeze(-1) * values).sum(dim=-2)


def composite(
    weights: Tensor, rgbs: Tensor, t_mids: Tensor, background: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Colour over a per-pixel background, expected depth and opacity (eq. 2).

    Args:
        weights: ``[R, S]`` from :func:`render_weights`.
        rgbs: ``[R, S, 3]`` sample colours.
        t_mids: ``[R, S]`` sample distances along the ray.
        background: ``[R, 3]`` colour behind each ray.
    Returns:
        ``rgb [R, 3]``, ``depth [R]`` (expected distance where opaque, weighted by opacity) and
        ``opacity [R]``.
    """
    opacity = weights.sum(dim=-1)
    rgb = accumulate(weights, rgbs) + (1.0 - opacity).unsqueeze(-1) * background
    depth = (weights * t_mids).sum(dim=-1)
    return rgb, depth, opacity
