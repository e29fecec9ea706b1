"""The fast rendering path of a trained head: whole frames, fixed-size tiles, no gradients.

It renders the image the training path (``TalkingHead.render_frame``: the ray marcher, then
``render_chunked``'s compacted marching) renders, with less work per frame:

- the frame's condition is computed once and folded into the field (``Field.bind``: the M-AGLO
  scales and shifts into the sigma net's weights, constant inputs into biases), not re-applied
  to every point;
- rays that miss the occupied cells' box are dropped once per frame; the rest are marched in
  tiles of ``tile`` rays, each tile in one pass over a fixed candidate lattice (``candidates``
  steps, enough for the longest ray through the box) with a fixed budget of ``max_steps``
  samples per ray: the marcher's step rule, empty-space skipping by the occupancy grid and
  prefix packing as tensor operations of static shape (no loop over blocks of steps, no host
  synchronisation inside a tile);
- early termination in ``rounds``: a tile's budget is evaluated ``round_steps`` samples at a time,
  each round only at the samples that are occupied and still receive light (>= 1e-4), gathered
  (``gather=True``) or everywhere with a mask (``gather=False``; what a compiler or a CUDA graph
  wants). On CPU the gathered form is faster (docs/inference.md): it evaluates about 30 % fewer
  points.

``frame_renderer(head, compile=True)`` renders with the head's hash-grid lookups through
``torch.compile`` (:meth:`~talker.encoders.HashGrid.compile_lookup`), the part of a point's work that
compiling makes several times faster on CPU; ``FastRenderer(compile=True, gather=False)`` compiles the
whole static-shape tile (the form a CUDA graph needs). The eager functions are the fallback and the
reference.

Example:
    >>> from talker.fields.base import FieldOutput
    >>> from talker.rendering import OccupancyGrid, RayMarcher
    >>> grid = OccupancyGrid(bound=1.0, resolution=16)
    >>> grid.update(lambda x: 100.0 * (x.norm(dim=-1) < 0.5))
    >>> sphere = lambda x, d: FieldOutput(sigma=100.0 * (x.norm(dim=-1) < 0.5), rgb=torch.zeros_like(x))
    >>> fast = FastRenderer(grid, RayMarcher(max_steps=64), bound=1.0)
    >>> o, d = torch.tensor([[0.0, 0.0, -3.0], [0.0, 3.0, -3.0]]), torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    >>> fast(sphere, o, d, torch.ones(2, 3)).rgb.round(decimals=3).tolist()  # black sphere, missed ray white
    [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from talker.encoders.hashgrid import compiled_lookups
from talker.fields.base import FieldOutput
from talker.rendering import OccupancyGrid, RayMarcher, RenderOutput, ray_aabb
from talker.rendering.renderer import TRANSMITTANCE_THRESHOLD
from talker.rendering.volrend import exclusive_sum, optical_depths

FieldFn = Callable[[Tensor, Tensor], FieldOutput]


class FastRenderer:
    """Render whole frames through a field given as a callable ``(x, d) -> FieldOutput``.

    Args:
        occupancy: the head's occupancy grid (empty-space skipping, the box marched through).
        marcher: the step rule and the budget of samples per ray (``max_steps``) of the training path.
        bound: half side of the field's box.
        tile: rays per tile.
        round_steps: samples per ray evaluated per early-termination round.
        gather: evaluate only the live samples of a round (True) or all of them under a mask.
        threshold: early termination (samples reached by less light get weight 0).
        compile: with ``gather=False``, run the whole tile through ``torch.compile`` (static shapes).
    """

    def __init__(
        self,
        occupancy: OccupancyGrid,
        marcher: RayMarcher,
        bound: float,
        *,
        tile: int = 16384,
        round_steps: int = 4,
        gather: bool = True,
        threshold: float = TRANSMITTANCE_THRESHOLD,
        compile: bool = False,
    ) -> None:
        if tile < 1 or round_steps < 1:
            raise ValueError(f"FastRenderer: tile and round_steps must be >= 1, got {tile} and {round_steps}")
        self.occupancy, self.marcher, self.bound = occupancy, marcher, bound
        self.tile, self.round_steps, self.gather, self.threshold = tile, round_steps, gather, threshold
        self.budget = marcher.max_steps
        if compile and gather:
            # Compiling the field for any number of gathered points gained nothing over compiled
            # hash-grid lookups alone (docs/inference.md): frame_renderer(compile=True) does those.
            raise ValueError(
                "FastRenderer: compile=True needs gather=False; compile the lookups with frame_renderer"
            )
        self._tile_fn = torch.compile(self._render_tile, dynamic=False) if compile else self._render_tile

    @torch.no_grad()
    def __call__(self, field_fn: FieldFn, rays_o: Tensor, rays_d: Tensor, background: Tensor) -> RenderOutput:
        """``[R, 3]`` rays and background -> per-ray ``rgb``, ``depth``, ``opacity``."""
        num_rays = rays_o.shape[0]
        rgb, depth, opacity = background.clone(), rays_o.new_zeros(num_rays), rays_o.new_zeros(num_rays)
        box = self._box(rays_o)
        if box is None:
            return RenderOutput(rgb, depth, opacity)
        near, far = ray_aabb(rays_o, rays_d, box, self.marcher.min_near)
        hit = (near < far).nonzero().squeeze(-1)  # once per frame: the rays that reach the box
        dt_min, dt_max = self.marcher.step_bounds(self.bound, self.occupancy)
        if hit.numel() == 0:
            return RenderOutput(rgb, depth, opacity)
        # No ray needs more lattice steps than the frame's longest span over the smallest step (one
        # host read per frame), rounded up to a multiple of 8 so that a compiled tile sees few sizes.
        span = float((far[hit] - near[hit]).max())
        candidates = 8 * math.ceil((math.ceil(span / dt_min) + 1) / 8)
        evaluated = 0
        for start in range(0, hit.numel(), self.tile):
            ids = hit[start : start + self.tile]
            pad = self.tile - ids.numel()  # fixed tile size: the last tile repeats its first ray, unmarched
            padded = torch.cat([ids, ids[:1].expand(pad)]) if pad else ids
            tile_near, tile_far = near[padded], far[padded]
            if pad:
                tile_far = torch.cat([tile_far[: ids.numel()], tile_near[ids.numel() :]])
            out = self._tile_fn(
                field_fn, rays_o[padded], rays_d[padded], tile_near, tile_far, background[padded],
                candidates, dt_min, dt_max,
            )
            keep = ids.numel()
            rgb[ids], depth[ids], opacity[ids] = out[0][:keep], out[1][:keep], out[2][:keep]
            evaluated += int(out[3])
        return RenderOutput(rgb, depth, opacity, num_evaluated=evaluated)

    def _box(self, like: Tensor) -> Tensor | None:
        """``[2, 3]``: the field's box cut to the occupied cells (the marcher's), None when no cell is occupied."""
        box = torch.tensor([[-self.bound] * 3, [self.bound] * 3], device=like.device, dtype=like.dtype)
        occupied = self.occupancy.occupied_box.to(box)
        box = torch.stack([box[0].maximum(occupied[0]), box[1].minimum(occupied[1])])
        return None if bool((box[0] > box[1]).any()) else box

    def samples(
        self, rays_o: Tensor, rays_d: Tensor, t0: Tensor, far: Tensor, candidates: int, dt_min: float, dt_max: float
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The marcher's samples of ``T`` rays in one static pass: ``t_mids``, ``deltas`` and ``mask``,
        ``[T, max_steps]`` each (the first ``max_steps`` occupied lattice intervals of each ray)."""
        num, budget = rays_o.shape[0], self.budget
        k = torch.arange(candidates + 1, device=rays_o.device)
        t = self.marcher.lattice(t0, k, dt_min, dt_max)  # [T, K + 1] interval bounds
        ray_far = far.unsqueeze(-1)
        t_start, t_end = t[:, :-1], t[:, 1:].minimum(ray_far)
        mids = (t_start + t_end) / 2
        points = rays_o.unsqueeze(1) + rays_d.unsqueeze(1) * mids.unsqueeze(-1)
        valid = (t_start < ray_far - 1e-6) & self.occupancy.query(points.reshape(-1, 3)).view(num, candidates)
        rank = torch.cumsum(valid, dim=-1) - 1
        # Packing without nonzero: the kept samples go to their rank, the rest to a spare column.
        dest = torch.where(valid & (rank < budget), rank, torch.full_like(rank, budget))
        packed_mid = mids.new_zeros(num, budget + 1).scatter_(1, dest, mids)[:, :budget]
        packed_delta = mids.new_zeros(num, budget + 1).scatter_(1, dest, t_end - t_start)[:, :budget]
        mask = torch.arange(budget, device=rays_o.device) < valid.sum(dim=-1, keepdim=True).clamp(max=budget)
        return packed_mid, packed_delta * mask, mask

    def _render_tile(
        self, field_fn: FieldFn, rays_o: Tensor, rays_d: Tensor, t0: Tensor, far: Tensor, background: Tensor,
        candidates: int, dt_min: float, dt_max: float,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``rgb [T, 3]``, ``depth [T]``, ``opacity [T]`` and the number of field evaluations."""
        t_mids, deltas, mask = self.samples(rays_o, rays_d, t0, far, candidates, dt_min, dt_max)
        num = rays_o.shape[0]
        light = rays_o.new_ones(num)
        color, depth, opacity = rays_o.new_zeros(num, 3), rays_o.new_zeros(num), rays_o.new_zeros(num)
        evaluated = torch.zeros((), dtype=torch.long, device=rays_o.device)
        for first in range(0, self.budget, self.round_steps):  # a fixed number of rounds
            cols = slice(first, min(first + self.round_steps, self.budget))
            live = mask[:, cols] & (light >= self.threshold).unsqueeze(-1)  # [T, n]
            mids = t_mids[:, cols]
            sigma, rgb = self._evaluate(field_fn, rays_o, rays_d, mids, live)
            evaluated = evaluated + live.sum()
            optical = optical_depths(sigma, deltas[:, cols])
            light_in = light.unsqueeze(-1) * torch.exp(-exclusive_sum(optical))
            weights = light_in * (1.0 - torch.exp(-optical)) * (light_in >= self.threshold)
            color = color + (weights.unsqueeze(-1) * rgb).sum(dim=1)
            depth = depth + (weights * mids).sum(dim=1)
            opacity = opacity + weights.sum(dim=1)
            light = light * torch.exp(-optical.sum(dim=-1))
        return color + (1.0 - opacity).unsqueeze(-1) * background, depth, opacity, evaluated

    def _evaluate(
        self, field_fn: FieldFn, rays_o: Tensor, rays_d: Tensor, mids: Tensor, live: Tensor
    ) -> tuple[Tensor, Tensor]:
        """``sigma [T, n]`` and ``rgb [T, n, 3]`` of the live samples of a round, 0 elsewhere."""
        num, n = live.shape
        if self.gather:
            rows, cols = live.nonzero(as_tuple=True)
            sigma, rgb = mids.new_zeros(num, n), mids.new_zeros(num, n, 3)
            points = rays_o[rows] + rays_d[rows] * mids[rows, cols].unsqueeze(-1)
            out = field_fn(points, rays_d[rows])
            sigma[rows, cols] = out.sigma.to(sigma.dtype)
            rgb[rows, cols] = out.rgb.to(rgb.dtype)
            return sigma, rgb
        points = rays_o.unsqueeze(1) + rays_d.unsqueeze(1) * mids.unsqueeze(-1)
        # Dead samples are evaluated at the box centre (a valid input) and masked out.
        points = torch.where(live.unsqueeze(-1), points, torch.zeros_like(points))
        out = field_fn(points.reshape(-1, 3), rays_d.unsqueeze(1).expand(-1, n, -1).reshape(-1, 3))
        sigma = out.sigma.to(mids.dtype).view(num, n) * live
        return sigma, out.rgb.to(mids.dtype).view(num, n, 3)


def frame_renderer(head: Any, *, compile: bool = False, **options: Any) -> Callable[[Mapping[str, Any]], RenderOutput]:
    """``frame -> RenderOutput`` of a :class:`~talker.head.model.TalkingHead` on the fast path: the
    frame's condition once, the torso (once the torso stage has run) under the head, then the head.
    A head sampled otherwise than by a :class:`RayMarcher` renders on the training path.
    ``compile``: the head's hash-grid lookups run through ``torch.compile`` while this renders
    (``gather=False`` in ``options``: the whole tile instead).

    ``frame`` is a frame dictionary of ``talker.data`` (``rays_o``, ``rays_d``, ``background``,
    ``cond``; ``pixels``, ``pose``, ``bc`` and ``image`` for the torso), as ``head.render_frame`` reads."""
    if not isinstance(head.sampler, RayMarcher):  # the fast path reproduces the marcher's samples only
        return head.render_frame
    whole_tile = compile and not options.get("gather", True)
    renderer = FastRenderer(head.occupancy, head.sampler, head.field.bound, compile=whole_tile, **options)
    compile_lookups = compile and not whole_tile
    lookups = functools.partial(compiled_lookups, head) if compile_lookups else contextlib.nullcontext

    @torch.no_grad()
    def render(frame: Mapping[str, Any]) -> RenderOutput:
        with lookups():
            cond = head.condition(frame["cond"])
            background = frame["background"]
            if head.torso is not None and bool(head.torso_trained) and "bc" in frame:
                height, width = frame["image"].shape[:2]
                background = head.torso_background(frame["pixels"], width, height, frame["pose"], frame["bc"])
            field_fn = head.field.bind(cond, frame["cond"])
            return renderer(field_fn, frame["rays_o"], frame["rays_d"], background)

    return render
