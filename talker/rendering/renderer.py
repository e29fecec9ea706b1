"""Render rays through any field given as a callable ``(x, d) -> FieldOutput``.

The renderer knows nothing about conditioning: callers bind it, e.g.
``render_rays(functools.partial(field, cond=cond), ...)``.

Example (a unit sphere of density 2 seen head-on):
    >>> def sphere(x, d):
    ...     return FieldOutput(sigma=2.0 * (x.norm(dim=-1) < 1), rgb=torch.ones_like(x))
    >>> o, d = torch.tensor([[0.0, 0.0, -3.0]]), torch.tensor([[0.0, 0.0, 1.0]])
    >>> out = render_rays(sphere, o, d, torch.zeros(1, 3), sampler=RayMarcher(step_size=0.01), bound=1.0)
    >>> round(out.opacity.item(), 3)  # 1 - exp(-2 * 2)
    0.982
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from talker.fields.base import FieldOutput
from talker.rendering.occupancy import OccupancyGrid
from talker.rendering.samplers import RayMarcher, RayNoise, RaySampler, RaySamples
from talker.rendering.volrend import composite, exclusive_sum, optical_depths, weights_and_transmittance

FieldFn = Callable[[Tensor, Tensor], FieldOutput]

TRANSMITTANCE_THRESHOLD = 1e-4  # instant-NGP's early termination


@dataclass
class RenderOutput:
    """Per-ray results.

    Attributes:
        rgb: ``[R, 3]`` colour over the background; depth: ``[R]`` expected distance
            ``sum_i w_i t_i``; opacity: ``[R]`` accumulated ``sum_i w_i``.
        weights: ``[R, S]`` compositing weights of ``samples`` (None from :func:`render_chunked`).
        samples: the :class:`RaySamples` the weights belong to (None from :func:`render_chunked`).
        num_evaluated: field evaluations spent.
        extras: the field's per-point values (``FieldOutput.extras``) composited per ray, ``[R]`` or
            ``[R, C]`` (``sum_i w_i e_i``); only from the differentiable (non-compacted) path.
        point_values: the same values per sample, ``[R, S(, C)]`` (0 where not evaluated), as nerfacc
            returns per-sample extras; only from the differentiable path.
        transmittance: ``[R, S]`` light reaching each sample; only from the differentiable path.
    """

    rgb: Tensor
    depth: Tensor
    opacity: Tensor
    weights: Tensor | None = None
    samples: RaySamples | None = None
    num_evaluated: int = 0
    extras: dict[str, Tensor] = field(default_factory=dict)
    point_values: dict[str, Tensor] = field(default_factory=dict)
    transmittance: Tensor | None = None


def render_rays(
    field_fn: FieldFn,
    rays_o: Tensor,
    rays_d: Tensor,
    background: Tensor,
    *,
    bound: float,
    sampler: RaySampler | None = None,
    occupancy: OccupancyGrid | None = None,
    perturb: bool = False,
    noise: RayNoise | None = None,
    compact: bool = False,
    transmittance_threshold: float = TRANSMITTANCE_THRESHOLD,
) -> RenderOutput:
    """Volume-render ``R`` rays through the box ``[-bound, bound]^3``.

    Args:
        field_fn: ``(x [M, 3], d [M, 3]) -> FieldOutput``.
        rays_o, rays_d: ``[R, 3]`` origins and unit directions.
        background: ``[R, 3]`` colour behind each ray.
        bound: half side of the scene box.
        sampler: where to sample (default: a :class:`RayMarcher`).
        occupancy: skip samples in cells this grid marks empty.
        perturb: jitter the samples (training).
        noise: source of that jitter (default: torch's global generator; see :class:`RayNoise`).
        compact: march alive rays in rounds and stop evaluating a ray once its transmittance
            falls below ``transmittance_threshold`` (inference; same image within that threshold).
        transmittance_threshold: early termination; samples reached by less light get weight 0.
    Returns:
        :class:`RenderOutput`.
    """
    sampler = sampler if sampler is not None else RayMarcher()
    samples = sampler(rays_o, rays_d, bound=bound, occupancy=occupancy, perturb=perturb, noise=noise)
    if compact:
        return _render_compacted(field_fn, rays_o, rays_d, background, samples, transmittance_threshold)
    rows, cols = samples.mask.nonzero(as_tuple=True)
    shape = samples.mask.shape
    sigmas = rays_o.new_zeros(shape)
    rgbs = rays_o.new_zeros(*shape, 3)
    per_sample: dict[str, Tensor] = {}
    if rows.numel() > 0:
        points = rays_o[rows] + rays_d[rows] * samples.t_mids[rows, cols].unsqueeze(-1)
        out = field_fn(points, rays_d[rows])
        sigmas = sigmas.index_put((rows, cols), out.sigma.to(sigmas.dtype))
        rgbs = rgbs.index_put((rows, cols), out.rgb.to(rgbs.dtype))
        for name, value in out.extras.items():
            grid = rays_o.new_zeros(*shape, *value.shape[1:])
            per_sample[name] = grid.index_put((rows, cols), value.to(grid.dtype))
    weights, light = weights_and_transmittance(sigmas, samples.deltas, transmittance_threshold)
    rgb, depth, opacity = composite(weights, rgbs, samples.t_mids, background)
    extras = {name: _composite_extra(weights, value) for name, value in per_sample.items()}
    return RenderOutput(
        rgb, depth, opacity, weights, samples, num_evaluated=int(rows.numel()), extras=extras,
        point_values=per_sample, transmittance=light,
    )


def _composite_extra(weights: Tensor, value: Tensor) -> Tensor:
    """``[R, S], [R, S(, C)] -> [R(, C)]``: the weighted sum along each ray."""
    return (weights.view(*weights.shape, *([1] * (value.dim() - 2))) * value).sum(dim=1)


def _render_compacted(
    field_fn: FieldFn, rays_o: Tensor, rays_d: Tensor, background: Tensor, samples: RaySamples, threshold: float
) -> RenderOutput:
    """Inference marching (instant-NGP's ``march_rays`` / ``composite_rays`` loop): each round
    evaluates the next ``n`` samples of the rays still alive, ``n = clamp(R // alive, 1, 8)``."""
    num_rays, width = samples.mask.shape
    light = rays_o.new_ones(num_rays)
    color = rays_o.new_zeros(num_rays, 3)
    depth = rays_o.new_zeros(num_rays)
    weights = rays_o.new_zeros(num_rays, width)
    counts = samples.counts
    t_mids, deltas = samples.t_mids, samples.deltas
    alive = (counts > 0).nonzero().squeeze(-1)
    column, evaluated = 0, 0
    while alive.numel() > 0 and column < width:
        n = max(1, min(8, num_rays // alive.numel()))
        cols = slice(column, column + n)
        mask = samples.mask[alive, cols]  # [A, n]
        rows, js = mask.nonzero(as_tuple=True)
        sigma = rays_o.new_zeros(mask.shape)
        rgb = rays_o.new_zeros(*mask.shape, 3)
        if rows.numel() > 0:
            ray_ids = alive[rows]
            points = rays_o[ray_ids] + rays_d[ray_ids] * t_mids[ray_ids, column + js].unsqueeze(-1)
            out = field_fn(points, rays_d[ray_ids])
            sigma[rows, js] = out.sigma.to(sigma.dtype)
            rgb[rows, js] = out.rgb.to(rgb.dtype)
            evaluated += rows.numel()
        optical = optical_depths(sigma, deltas[alive, cols])
        light_in = light[alive].unsqueeze(-1) * torch.exp(-exclusive_sum(optical))
        w = light_in * (1.0 - torch.exp(-optical)) * (light_in >= threshold)
        weights[alive, cols] = w
        color[alive] += (w.unsqueeze(-1) * rgb).sum(dim=1)
        depth[alive] += (w * t_mids[alive, cols]).sum(dim=1)
        light[alive] = light[alive] * torch.exp(-optical.sum(dim=-1))
        column += n
        alive = alive[(light[alive] >= threshold) & (counts[alive] > column)]
    opacity = weights.sum(dim=-1)
    rgb = color + (1.0 - opacity).unsqueeze(-1) * background
    return RenderOutput(rgb, depth, opacity, weights, samples, num_evaluated=evaluated)


@torch.no_grad()
def render_chunked(
    field_fn: FieldFn,
    rays_o: Tensor,
    rays_d: Tensor,
    background: Tensor,
    chunk: int = 32768,
    compact: bool = True,
    **kwargs,
) -> RenderOutput:
    """:func:`render_rays` over many rays (a whole image) in chunks, without gradients.

    Compacted by default; per-sample ``weights``/``samples`` are not kept (``None``).
    """
    parts = [
        render_rays(
            field_fn, rays_o[i : i + chunk], rays_d[i : i + chunk], background[i : i + chunk], compact=compact, **kwargs
        )
        for i in range(0, rays_o.shape[0], chunk)
    ]
    return RenderOutput(
        rgb=torch.cat([p.rgb for p in parts]),
        depth=torch.cat([p.depth for p in parts]),
        opacity=torch.cat([p.opacity for p in parts]),
        num_evaluated=sum(p.num_evaluated for p in parts),
    )
