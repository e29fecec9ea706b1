"""Volume rendering along rays (R2-Talker eqs. 2-3), written for padded ``[rays, samples]`` tensors.

Example:
    >>> sigmas = torch.tensor([[0.0, 1e4, 1e4]])          # empty, then opaque
    >>> deltas = torch.full((1, 3), 0.1)
    >>> weights = render_weights(sigmas, deltas)
    >>> round(weights.sum().item(), 4)
    1.0
    >>> render_weights(sigmas, deltas, transmittance_threshold=1e-4)[0, 2].item()  # ray terminated
    0.0
"""

from __future__ import annotations

import torch
from torch import Tensor


def optical_depths(sigmas: Tensor, deltas: Tensor) -> Tensor:
    """``sigma_i delta_i``, 0 where ``delta_i`` is 0 (padding: even an infinite density there adds nothing): ``[R, S]``."""
    return torch.where(deltas > 0, sigmas * deltas, torch.zeros_like(sigmas))


def exclusive_sum(values: Tensor) -> Tensor:
    """``sum_{j<i} v_j`` along the last axis. Summed, not ``cumsum(v) - v``: a density that overflows
    to inf (a logit above 88.7 through ``exp``: an opaque surface) would make that ``inf - inf = NaN``
    and the whole batch's loss NaN, where instant-NGP's kernels and nerfacc give the weight 1 there.

    Example:
        >>> exclusive_sum(torch.tensor([[1.0, float("inf"), 2.0]])).tolist()
        [[0.0, 1.0, inf]]
    """
    return torch.cat([torch.zeros_like(values[..., :1]), torch.cumsum(values[..., :-1], dim=-1)], dim=-1)


def transmittance(sigmas: Tensor, deltas: Tensor) -> Tensor:
    """``T_i = exp(-sum_{j<i} sigma_j delta_j)``, the light reaching sample ``i`` (eq. 3): ``[R, S]``."""
    return torch.exp(-exclusive_sum(optical_depths(sigmas, deltas)))


def render_weights(sigmas: Tensor, deltas: Tensor, transmittance_threshold: float = 0.0) -> Tensor:
    """Compositing weights ``w_i = T_i * (1 - exp(-sigma_i * delta_i))``.

    Args:
        sigmas: ``[R, S]`` densities (>= 0).
        deltas: ``[R, S]`` sample lengths ``t_{i+1} - t_i`` (0 for padding).
        transmittance_threshold: early ray termination: samples reached by less light than this
            get weight 0 (and no gradient), as instant-NGP's compositing kernels stop there.
    Returns:
        ``[R, S]`` weights.
    """
    return weights_and_transmittance(sigmas, deltas, transmittance_threshold)[0]


def weights_and_transmittance(sigmas: Tensor, deltas: Tensor, transmittance_threshold: float = 0.0) -> tuple[Tensor, Tensor]:
    """:func:`render_weights` and the transmittance ``T_i`` they were computed from, both ``[R, S]``."""
    alphas = 1.0 - torch.exp(-optical_depths(sigmas, deltas))
    light = transmittance(sigmas, deltas)
    weights = light * alphas
    if transmittance_threshold > 0:
        weights = weights * (light >= transmittance_threshold)
    return weights, light


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
        ``rgb [R, 3]`` = ``sum_i w_i c_i + (1 - opacity) * background``, ``depth [R]`` =
        ``sum_i w_i t_i`` (not normalised by opacity) and ``opacity [R]`` = ``sum_i w_i``.
    """
    opacity = weights.sum(dim=-1)
    rgb = accumulate(weights, rgbs) + (1.0 - opacity).unsqueeze(-1) * background
    depth = (weights * t_mids).sum(dim=-1)
    return rgb, depth, opacity
