"""Where along each ray to sample: ray-box intersection and stratified sampling."""

from __future__ import annotations

import torch
from torch import Tensor


def ray_aabb(rays_o: Tensor, rays_d: Tensor, bound: float, min_near: float = 0.05) -> tuple[Tensor, Tensor]:
    """Entry and exit distances of rays through the box ``[-bound, bound]^3``.

    Args:
        rays_o, rays_d: ``[R, 3]`` origins and unit directions.
    Returns:
        ``near [R]`` (at least ``min_near``) and ``far [R]``; rays that miss have ``far <= near``.

    Example:
        >>> near, far = ray_aabb(torch.tensor([[0.0, 0.0, -3.0]]), torch.tensor([[0.0, 0.0, 1.0]]), 1.0)
        >>> near.item(), far.item()
        (2.0, 4.0)
    """
    safe_d = torch.where(rays_d.abs() < 1e-9, torch.full_like(rays_d, 1e-9), rays_d)
    t0 = (-bound - rays_o) / safe_d
    t1 = (bound - rays_o) / safe_d
    near = torch.minimum(t0, t1).amax(dim=-1).clamp(min=min_near)
    far = torch.maximum(t0, t1).amin(dim=-1)
    return near, far


def stratified_samples(
    near: Tensor, far: Tensor, num_samples: int, perturb: bool = False, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Split ``[near, far]`` into ``num_samples`` equal bins, one sample per bin.

    Args:
        near, far: ``[R]``.
        perturb: jitter each sample uniformly inside its bin (training); else bin centres.
    Returns:
        ``t_mids [R, S]`` sample distances and ``deltas [R, S]`` bin lengths (0 for missed rays).
    """
    span = (far - near).clamp(min=0.0)
    delta = span / num_samples
    offsets = torch.arange(num_samples, device=near.device, dtype=near.dtype)
    if perturb:
        jitter = torch.rand((near.shape[0], num_samples), device=near.device, dtype=near.dtype, generator=generator)
    else:
        jitter = torch.full((near.shape[0], num_samples), 0.5, device=near.device, dtype=near.dtype)
    t_mids = near.unsqueeze(-1) + (offsets + jitter) * delta.unsqueeze(-1)
    return t_mids, delta.unsqueeze(-1).expand(-1, num_samples)
