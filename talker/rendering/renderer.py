"""Render rays through any field given as a callable ``(x, d) -> FieldOutput``.

The renderer knows nothing about conditioning: callers bind it, e.g.
``render_rays(functools.partial(field, cond=cond), ...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from talker.fields.base import FieldOutput
from talker.rendering.occupancy import OccupancyGrid
from talker.rendering.samplers import ray_aabb, stratified_samples
from talker.rendering.volrend import composite, render_weights

FieldFn = Callable[[Tensor, Tensor], FieldOutput]


@dataclass
class RenderOutput:
    """``rgb [R, 3]``, ``depth [R]``, ``opacity [R]``, and how many samples the field evaluated."""

    rgb: Tensor
    depth: Tensor
    opacity: Tensor
    num_evaluated: int = 0


def render_rays(
    field_fn: FieldFn,
    rays_o: Tensor,
    rays_d: Tensor,
    background: Tensor,
    *,
    bound: float,
    num_samples: int = 64,
    occupancy: OccupancyGrid | None = None,
    perturb: bool = False,
    min_near: float = 0.05,
) -> RenderOutput:
    """Volume-render ``R`` rays through the box ``[-bound, bound]^3``.

    Samples are stratified between the box entry and exit; samples in cells the occupancy grid
    marks empty are not evaluated (density 0).

    Args:
        field_fn: ``(x [M, 3], d [M, 3]) -> FieldOutput``.
        rays_o, rays_d: ``[R, 3]`` origins and unit directions.
        background: ``[R, 3]`` colour behind each ray.
    Returns:
        :class:`RenderOutput` with ``rgb [R, 3]``, ``depth [R]``, ``opacity [R]``.
    """
    near, far = ray_aabb(rays_o, rays_d, bound, min_near)
    t_mids, deltas = stratified_samples(near, far, num_samples, perturb)
    points = rays_o.unsqueeze(1) + rays_d.unsqueeze(1) * t_mids.unsqueeze(-1)  # [R, S, 3]
    keep = (far > near).unsqueeze(-1).expand_as(t_mids)
    flat_points = points.reshape(-1, 3)
    if occupancy is not None:
        keep = keep & occupancy.query(flat_points).view_as(keep)
    idx = keep.reshape(-1).nonzero().squeeze(-1)
    sigmas = rays_o.new_zeros(t_mids.numel())
    rgbs = rays_o.new_zeros(t_mids.numel(), 3)
    if idx.numel() > 0:
        dirs = rays_d.unsqueeze(1).expand_as(points).reshape(-1, 3)
        out = field_fn(flat_points[idx], dirs[idx])
        sigmas = sigmas.index_put((idx,), out.sigma.to(sigmas.dtype))
        rgbs = rgbs.index_put((idx,), out.rgb.to(rgbs.dtype))
    weights = render_weights(sigmas.view_as(t_mids), deltas)
    rgb, depth, opacity = composite(weights, rgbs.view(*t_mids.shape, 3), t_mids, background)
    return RenderOutput(rgb=rgb, depth=depth, opacity=opacity, num_evaluated=int(idx.numel()))


@torch.no_grad()
def render_chunked(
    field_fn: FieldFn, rays_o: Tensor, rays_d: Tensor, background: Tensor, chunk: int = 8192, **kwargs
) -> RenderOutput:
    """:func:`render_rays` over many rays (a whole image) in chunks, without gradients."""
    parts = [
        render_rays(field_fn, rays_o[i : i + chunk], rays_d[i : i + chunk], background[i : i + chunk], **kwargs)
        for i in range(0, rays_o.shape[0], chunk)
    ]
    return RenderOutput(
        rgb=torch.cat([p.rgb for p in parts]),
        depth=torch.cat([p.depth for p in parts]),
        opacity=torch.cat([p.opacity for p in parts]),
        num_evaluated=sum(p.num_evaluated for p in parts),
    )
