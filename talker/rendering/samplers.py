"""Where along each ray to evaluate the field: ray-box intersection, uniform sampling, ray marching.

Samplers return :class:`RaySamples`: per-ray intervals in a padded ``[R, S]`` layout whose valid
entries form a prefix of each row (``mask``). The renderer evaluates only valid samples (packed),
and composites in the padded layout.

Example:
    >>> o, d = torch.tensor([[0.0, 0.0, -3.0]]), torch.tensor([[0.0, 0.0, 1.0]])
    >>> samples = RayMarcher(max_steps=4096, step_size=0.01)(o, d, bound=1.0)
    >>> samples.counts.item(), round(samples.t_ends[0, samples.counts.item() - 1].item(), 4)
    (200, 4.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch
from torch import Tensor

if TYPE_CHECKING:
    from talker.rendering.occupancy import OccupancyGrid

SQRT3 = math.sqrt(3.0)


def ray_aabb(
    rays_o: Tensor, rays_d: Tensor, bound: float | Tensor, min_near: float = 0.05
) -> tuple[Tensor, Tensor]:
    """Entry and exit distances of rays through a box.

    Args:
        rays_o, rays_d: ``[R, 3]`` origins and unit directions.
        bound: half side of the cube ``[-bound, bound]^3``, or a ``[2, 3]`` tensor ``(min, max)``.
    Returns:
        ``near [R]`` (at least ``min_near``) and ``far [R]``; rays that miss have ``far <= near``.

    Example:
        >>> near, far = ray_aabb(torch.tensor([[0.0, 0.0, -3.0]]), torch.tensor([[0.0, 0.0, 1.0]]), 1.0)
        >>> near.item(), far.item()
        (2.0, 4.0)
    """
    if isinstance(bound, Tensor):
        lo, hi = bound[0].to(rays_o), bound[1].to(rays_o)
    else:
        lo, hi = -bound, bound
    safe_d = torch.where(rays_d.abs() < 1e-9, torch.full_like(rays_d, 1e-9), rays_d)
    t0 = (lo - rays_o) / safe_d
    t1 = (hi - rays_o) / safe_d
    near = torch.minimum(t0, t1).amax(dim=-1).clamp(min=min_near)
    far = torch.maximum(t0, t1).amin(dim=-1)
    return near, far


@dataclass  # not frozen: Lightning moves batches (and the dataclasses in them) field by field
class RayNoise:
    """Uniform draws for rays ``rank::world`` of a ``total``-ray batch, all from one seed.

    A ray's jitter then depends on its place in the global batch, not on how the batch is split
    across DDP ranks, so N ranks train as one process on the whole batch does.

    Example:
        >>> whole = RayNoise(seed=7, total=4).rand(2, like=torch.zeros(4))
        >>> half = RayNoise(seed=7, total=4, rank=1, world=2).rand(2, like=torch.zeros(2))
        >>> torch.equal(whole[1::2], half)
        True
    """

    seed: int
    total: int
    rank: int = 0
    world: int = 1

    def rand(self, *shape: int, like: Tensor) -> Tensor:
        """``[R, *shape]`` uniform in ``[0, 1)``, ``R`` this rank's rays; ``like`` gives dtype and device."""
        full = torch.rand((self.total, *shape), generator=torch.Generator().manual_seed(self.seed), dtype=like.dtype)
        return full[self.rank :: self.world].to(like.device)


def _uniform(noise: RayNoise | None, rows: int, *shape: int, like: Tensor) -> Tensor:
    if noise is None:
        return torch.rand((rows, *shape), device=like.device, dtype=like.dtype)
    draws = noise.rand(*shape, like=like)
    if draws.shape[0] != rows:
        raise ValueError(f"RayNoise gives {draws.shape[0]} rays ({noise}), the batch has {rows}")
    return draws


def stratified_samples(
    near: Tensor, far: Tensor, num_samples: int, perturb: bool = False, noise: RayNoise | None = None
) -> tuple[Tensor, Tensor]:
    """Split ``[near, far]`` into ``num_samples`` equal bins, one sample per bin.

    Args:
        near, far: ``[R]``.
        perturb: jitter each sample uniformly inside its bin (training); else bin centres.
        noise: where the jitter comes from (default: torch's global generator).
    Returns:
        ``t_mids [R, S]`` sample distances and ``deltas [R, S]`` bin lengths (0 for missed rays).
    """
    span = (far - near).clamp(min=0.0)
    delta = span / num_samples
    offsets = torch.arange(num_samples, device=near.device, dtype=near.dtype)
    if perturb:
        jitter = _uniform(noise, near.shape[0], num_samples, like=near)
    else:
        jitter = torch.full((near.shape[0], num_samples), 0.5, device=near.device, dtype=near.dtype)
    t_mids = near.unsqueeze(-1) + (offsets + jitter) * delta.unsqueeze(-1)
    return t_mids, delta.unsqueeze(-1).expand(-1, num_samples)


@dataclass
class RaySamples:
    """Intervals ``[t_start, t_end)`` along each ray; the field is evaluated at their midpoints.

    Attributes:
        t_starts, t_ends: ``[R, S]`` (padded; entries where ``mask`` is False are 0).
        mask: ``[R, S]`` bool; each row's valid samples come first.
    """

    t_starts: Tensor
    t_ends: Tensor
    mask: Tensor

    @property
    def t_mids(self) -> Tensor:
        return (self.t_starts + self.t_ends) / 2

    @property
    def deltas(self) -> Tensor:
        """``[R, S]`` interval lengths, 0 where invalid."""
        return (self.t_ends - self.t_starts) * self.mask

    @property
    def counts(self) -> Tensor:
        """``[R]`` valid samples per ray."""
        return self.mask.sum(dim=-1)

    @property
    def num_samples(self) -> int:
        return int(self.mask.sum())

    def positions(self, rays_o: Tensor, rays_d: Tensor) -> Tensor:
        """``[R, S, 3]`` sample points (midpoints)."""
        return rays_o.unsqueeze(1) + rays_d.unsqueeze(1) * self.t_mids.unsqueeze(-1)


def pack_prefix(t_starts: Tensor, t_ends: Tensor, keep: Tensor, width: int | None = None) -> RaySamples:
    """Move each row's kept samples to its front, in order, and trim to ``width`` (default: the max count)."""
    rank = torch.cumsum(keep, dim=-1) - 1
    counts = keep.sum(dim=-1)
    width = int(counts.max().item()) if width is None else width
    width = max(width, 0)
    rows, cols = keep.nonzero(as_tuple=True)
    dest = rank[rows, cols]
    fits = dest < width
    rows, cols, dest = rows[fits], cols[fits], dest[fits]
    starts = t_starts.new_zeros(keep.shape[0], width)
    ends = t_ends.new_zeros(keep.shape[0], width)
    mask = torch.zeros(keep.shape[0], width, dtype=torch.bool, device=keep.device)
    starts[rows, dest] = t_starts[rows, cols]
    ends[rows, dest] = t_ends[rows, cols]
    mask[rows, dest] = True
    return RaySamples(starts, ends, mask)


class RaySampler(Protocol):
    """``(rays_o [R, 3], rays_d [R, 3], bound=, occupancy=, perturb=, noise=) -> RaySamples``."""

    def __call__(
        self,
        rays_o: Tensor,
        rays_d: Tensor,
        *,
        bound: float,
        occupancy: OccupancyGrid | None = None,
        perturb: bool = False,
        noise: RayNoise | None = None,
    ) -> RaySamples: ...


@dataclass
class UniformSampler:
    """``num_samples`` stratified samples between box entry and exit; samples in cells the occupancy
    grid marks empty are dropped. Simple and exact in expectation; wasteful in empty space."""

    num_samples: int = 64
    min_near: float = 0.05

    def __call__(
        self,
        rays_o: Tensor,
        rays_d: Tensor,
        *,
        bound: float,
        occupancy: OccupancyGrid | None = None,
        perturb: bool = False,
        noise: RayNoise | None = None,
    ) -> RaySamples:
        near, far = ray_aabb(rays_o, rays_d, bound, self.min_near)
        t_mids, deltas = stratified_samples(near, far, self.num_samples, perturb, noise)
        keep = (far > near).unsqueeze(-1).expand_as(t_mids)
        if occupancy is not None:
            points = rays_o.unsqueeze(1) + rays_d.unsqueeze(1) * t_mids.unsqueeze(-1)
            keep = keep & occupancy.query(points.reshape(-1, 3)).view_as(keep)
        return pack_prefix(t_mids - deltas / 2, t_mids + deltas / 2, keep, width=self.num_samples)


@dataclass
class RayMarcher:
    """Occupancy-grid ray marching (instant-NGP / RAD-NeRF ``march_rays``), vectorised in PyTorch.

    Step rule: from ``t``, the next sample is at ``t + dt(t)`` with
    ``dt(t) = clamp(t * dt_gamma, step_size, max_step_size)`` (``dt_gamma = 0``: constant steps).
    The sample lattice does not depend on occupancy (a skipped empty cell advances along the same
    lattice, as the CUDA kernel does), so it has a closed form and every ray is marched in
    parallel: candidates are generated a block of steps at a time, candidates in empty cells (or
    outside the occupied cells' bounding box) are dropped, and a ray stops after ``max_steps``
    occupied samples or at the box exit. Early termination (transmittance < 1e-4) happens in
    compositing, and rays are compacted at inference by the renderer.

    Args:
        max_steps: most samples per ray (RAD-NeRF: 16).
        dt_gamma: adaptive step growth with distance (RAD-NeRF: 1/256).
        step_size: smallest step; default ``min(max_step_size, 2 * sqrt(3) * bound / max_steps)``.
        max_step_size: largest step; default sqrt(3) x the coarsest cascade's cell side
            (RAD-NeRF's ``dt_max``), or of a 128^3 grid over the box without occupancy.
        min_near: samples start at least this far from the camera.
        jitter: with ``perturb``, offset each ray's lattice by a uniform fraction of a step.
    """

    max_steps: int = 1024
    dt_gamma: float = 0.0
    step_size: float | None = None
    max_step_size: float | None = None
    min_near: float = 0.05
    max_candidates: int = 1 << 22  # per block of steps, across rays (memory bound)

    def step_bounds(self, bound: float, occupancy: OccupancyGrid | None = None) -> tuple[float, float]:
        """``(smallest, largest)`` step of the rule."""
        coarsest_cell = occupancy.cell_sizes[-1] if occupancy is not None else 2 * bound / 128
        dt_max = self.max_step_size if self.max_step_size is not None else SQRT3 * coarsest_cell
        dt_min = self.step_size
        if dt_min is None:
            dt_min = min(dt_max, 2 * SQRT3 * bound / self.max_steps)
        return dt_min, max(dt_max, dt_min)

    def lattice(self, t0: Tensor, k: Tensor, dt_min: float, dt_max: float) -> Tensor:
        """``t_k`` of the step rule from ``t0 [A]`` for step indices ``k [K]`` -> ``[A, K]``."""
        k = k.to(t0.dtype)
        if self.dt_gamma <= 0 or dt_min >= dt_max:
            return t0.unsqueeze(-1) + k * dt_min
        gamma = self.dt_gamma
        a, b = dt_min / gamma, dt_max / gamma  # dt_min below t = a, geometric up to t = b, dt_max after
        t0 = t0.unsqueeze(-1)
        n1 = torch.ceil(((a - t0) / dt_min).clamp(min=0))
        t1 = t0 + n1 * dt_min
        n2 = torch.ceil((torch.log(b / t1) / math.log1p(gamma)).clamp(min=0))
        t2 = t1 * (1 + gamma) ** n2
        geometric = torch.where(k <= n1 + n2, t1 * (1 + gamma) ** (k - n1), t2 + (k - n1 - n2) * dt_max)
        return torch.where(k <= n1, t0 + k * dt_min, geometric)

    def __call__(
        self,
        rays_o: Tensor,
        rays_d: Tensor,
        *,
        bound: float,
        occupancy: OccupancyGrid | None = None,
        perturb: bool = False,
        noise: RayNoise | None = None,
    ) -> RaySamples:
        num_rays, device = rays_o.shape[0], rays_o.device
        box = torch.tensor([[-bound] * 3, [bound] * 3], device=device, dtype=rays_o.dtype)
        if occupancy is not None:  # march only through the box around the occupied cells
            occupied = occupancy.occupied_box.to(box)
            box = torch.stack([box[0].maximum(occupied[0]), box[1].minimum(occupied[1])])
            if bool((box[0] > box[1]).any()):  # no occupied cell: nothing to sample
                empty = rays_o.new_zeros(num_rays, 0)
                return RaySamples(empty, empty, torch.zeros(num_rays, 0, dtype=torch.bool, device=device))
        near, far = ray_aabb(rays_o, rays_d, box, self.min_near)
        dt_min, dt_max = self.step_bounds(bound, occupancy)
        t0 = near
        if perturb:
            first_step = (near * self.dt_gamma).clamp(dt_min, dt_max)
            jitter = _uniform(noise, num_rays, like=near)
            t0 = near + jitter * first_step

        width = self.max_steps
        starts = rays_o.new_zeros(num_rays, width)
        ends = rays_o.new_zeros(num_rays, width)
        mask = torch.zeros(num_rays, width, dtype=torch.bool, device=device)
        counts = torch.zeros(num_rays, dtype=torch.long, device=device)
        active = (t0 < far).nonzero().squeeze(-1)
        if active.numel() == 0:
            return RaySamples(starts[:, :0], ends[:, :0], mask[:, :0])
        # No ray needs more lattice steps than its span over the smallest step.
        steps_needed = int(torch.ceil((far[active] - t0[active]).max() / dt_min).item()) + 1
        k0 = 0
        while active.numel() > 0 and k0 < steps_needed:
            block = max(8, min(256, self.max_candidates // active.numel(), steps_needed - k0))
            k = torch.arange(k0, k0 + block + 1, device=device)
            t = self.lattice(t0[active], k, dt_min, dt_max)  # [A, block + 1] interval bounds
            ray_far = far[active].unsqueeze(-1)
            t_start, t_end = t[:, :-1], t[:, 1:].minimum(ray_far)
            valid = t_start < ray_far - 1e-6  # no sliver intervals from rounding at the exit
            if occupancy is not None:
                t_mid = ((t_start + t_end) / 2).unsqueeze(-1)
                mids = rays_o[active].unsqueeze(1) + rays_d[active].unsqueeze(1) * t_mid
                valid = valid & occupancy.query(mids.reshape(-1, 3)).view_as(valid)
            rank = counts[active].unsqueeze(-1) + torch.cumsum(valid, dim=-1) - 1
            keep = valid & (rank < width)
            rows, cols = keep.nonzero(as_tuple=True)
            ray_ids, dest = active[rows], rank[rows, cols]
            starts[ray_ids, dest] = t_start[rows, cols]
            ends[ray_ids, dest] = t_end[rows, cols]
            mask[ray_ids, dest] = True
            counts[active] += keep.sum(dim=-1)
            more = (counts[active] < width) & (t[:, -1] < far[active])
            active = active[more]
            k0 += block
        used = int(counts.max().item()) if num_rays else 0
        return RaySamples(starts[:, :used], ends[:, :used], mask[:, :used])
