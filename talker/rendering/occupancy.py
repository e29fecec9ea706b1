"""Occupancy grid with maximum-over-conditions pruning (RAD-NeRF; R2-Talker Sec. 3.4).

A conditioned head changes shape with its condition (the mouth opens), so a cell may be empty for
one frame and occupied for another. R2-Talker keeps, per cell, the *maximum* density over all
training conditions, so a cell is skipped only if it is empty under every condition.

Cost, and how this grid pays it. Evaluating every condition at every cell at every update
(``N`` frames x 128^3 cells every 16 steps) is far too expensive, and RAD-NeRF's code evaluates one
random condition per update, folding it in with ``max(decay * old, new)`` -- which forgets a rare
condition (a wide-open mouth) within a few dozen updates. Here:

- **Sweeps.** Conditions are visited in *sweeps*: a fresh permutation of all training
  conditions, consumed a batch per update (:class:`ConditionSweep`), so every condition is
  evaluated once per sweep. The density function of one update returns ``[B, N]`` for its batch,
  so a field can share the condition-independent work (the positional hash lookup) across the
  batch (``Field.densities``).
- **Two-level memory, decay per sweep.** ``sweep_max`` is the running max over the conditions
  seen so far in the current sweep; ``density`` holds the committed grid. At the end of a sweep,
  ``density <- max(decay * density, sweep_max)`` (RAD-NeRF's update rule with "new" being the
  max over *all* conditions), and ``sweep_max`` restarts. A cell's value is
  ``max(density, sweep_max)``. Every condition's latest evaluation is therefore always part of a
  cell's value, undecayed until the sweep after it ends; decay only forgets densities that *no*
  condition produces any more (floaters of early training).
- **Cells per update.** The first update probes every cell the cameras see; later ones probe all
  currently occupied cells and their neighbours (so that an occupied cell is probed under every
  condition of the sweep, and geometry that grows next to existing geometry -- an opening mouth -- is found at
  the first visit of its condition) plus a random ``update_fraction`` of the rest (growth far from
  any occupied cell is found with that probability per visit), each probed at one point jittered
  inside the cell.
- **Frustum.** :meth:`mark_unseen` marks cells outside every training camera's frustum as never
  occupied (and never probed); the first camera to see a cell removes it from further tests.

Cascades: ``num_cascades`` nested grids of ``resolution^3`` cells cover ``[-b_c, b_c]^3`` with
``b_c = min(2^c, bound)`` (instant-NGP); a point uses the finest cascade containing it. A head
box (``bound <= 1``) has one cascade.

All state lives in buffers (checkpointed, moved by ``.to``). Under DDP, :meth:`synchronize` takes
the element-wise max of every rank's grid, so ranks may evaluate different conditions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

DensityFn = Callable[[Tensor], Tensor]  # [N, 3] -> [N], or [B, N] for B conditions


class OccupancyGrid(nn.Module):
    """Cascaded ``resolution^3`` grids over ``[-bound, bound]^3`` of maximum densities.

    Args:
        bound: half side of the box.
        resolution: cells per axis of each cascade (R2-Talker / RAD-NeRF: 128).
        num_cascades: nested grids; default ``1 + ceil(log2(bound))`` (1 for a head box).
        decay: factor on the committed grid at the end of each sweep (forgets stale geometry).
        density_threshold: a cell is occupied if its value reaches
            ``min(density_threshold, mean value over seen cells)``.
        update_fraction: share of the unoccupied cells probed per update after the first.
        dilation: occupied cells also mark their neighbours within this many cells (RAD-NeRF
            dilates by 1 for "less aggressive culling"); 0 keeps the threshold's cells only.

    Example:
        >>> grid = OccupancyGrid(bound=1.0, resolution=16)
        >>> grid.update(lambda x: 10.0 * (x.norm(dim=-1) < 0.5))
        >>> grid.query(torch.tensor([[0.0, 0.0, 0.0], [0.9, 0.9, 0.9]])).tolist()
        [True, False]
    """

    def __init__(
        self,
        bound: float = 1.0,
        resolution: int = 128,
        num_cascades: int | None = None,
        decay: float = 0.95,
        density_threshold: float = 10.0,
        update_fraction: float = 0.25,
        dilation: int = 0,
    ) -> None:
        super().__init__()
        self.bound = float(bound)
        self.resolution = resolution
        self.num_cascades = num_cascades or 1 + max(0, math.ceil(math.log2(bound)))
        self.decay = decay
        self.density_threshold = density_threshold
        self.update_fraction = update_fraction
        self.dilation = dilation
        shape = (self.num_cascades, resolution**3)
        self.register_buffer("density", torch.zeros(shape))
        self.register_buffer("sweep_max", torch.zeros(shape))
        # Everything counts as occupied until the first update has looked at every cell.
        self.register_buffer("occupied", torch.ones(shape, dtype=torch.bool))
        self.register_buffer("seen", self._used_cells())
        self.register_buffer("frustum_marked", torch.zeros((), dtype=torch.bool))
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))
        self.register_buffer("occupied_box", torch.tensor([[-bound] * 3, [bound] * 3], dtype=torch.float32))

    # -- geometry ------------------------------------------------------------------------------

    def cascade_bound(self, cascade: int) -> float:
        return min(2.0**cascade, self.bound)

    @property
    def cell_sizes(self) -> list[float]:
        """Cell side length of each cascade."""
        return [2 * self.cascade_bound(c) / self.resolution for c in range(self.num_cascades)]

    def _used_cells(self) -> Tensor:
        """Cells a point can land in: a coarser cascade's cells inside a finer cascade are never used."""
        used = torch.ones(self.num_cascades, self.resolution**3, dtype=torch.bool)
        for c in range(1, self.num_cascades):
            centers = self.cell_centers(c, torch.arange(self.resolution**3))
            used[c] = centers.abs().amax(dim=-1) >= self.cascade_bound(c - 1)
        return used

    def cascade_of(self, x: Tensor) -> Tensor:
        """``[N, 3] -> [N]`` the finest cascade whose box contains each point."""
        if self.num_cascades == 1:
            return torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        extent = x.abs().amax(dim=-1).clamp(min=1e-12)
        return (torch.floor(torch.log2(extent)) + 1).clamp(0, self.num_cascades - 1).long()

    def cell_index(self, x: Tensor) -> Tensor:
        """``[N, 3]`` points -> ``[N]`` flat indices into ``[num_cascades * resolution^3]`` (clamped)."""
        r = self.resolution
        if self.num_cascades == 1:
            half = self.cascade_bound(0)
            ijk = ((x + half) * (r / (2 * half))).long().clamp_(0, r - 1)
            return (ijk[:, 0] * r + ijk[:, 1]) * r + ijk[:, 2]
        cascade = self.cascade_of(x)
        half = torch.tensor([self.cascade_bound(c) for c in range(self.num_cascades)], device=x.device)[cascade]
        ijk = ((x + half.unsqueeze(-1)) * (r / (2 * half)).unsqueeze(-1)).long().clamp(0, r - 1)
        return ((cascade * r + ijk[:, 0]) * r + ijk[:, 1]) * r + ijk[:, 2]

    def cell_centers(self, cascade: int, cells: Tensor) -> Tensor:
        """``[M]`` flat indices within one cascade -> ``[M, 3]`` cell centres."""
        r = self.resolution
        ijk = torch.stack([cells // (r * r), (cells // r) % r, cells % r], dim=-1).float()
        half = self.cascade_bound(cascade)
        return (ijk + 0.5) * (2 * half / r) - half

    def query(self, x: Tensor) -> Tensor:
        """``[N, 3] -> [N]`` bool: may the point carry density? Points outside the box: False."""
        inside = (x.abs() <= self.bound).all(dim=-1)
        return inside & self.occupied.view(-1)[self.cell_index(x)]

    # -- frustum -------------------------------------------------------------------------------

    @torch.no_grad()
    def mark_unseen(
        self, poses: Tensor, intrinsics: Tensor, width: int, height: int, chunk: int = 1 << 15,
        frames_per_batch: int = 16,
    ) -> None:
        """Mark cells outside every camera's view frustum as never occupied (RAD-NeRF's
        ``mark_untrained_grid``).

        Args:
            poses: ``[F, 4, 4]`` camera-to-world (ngp frame: the camera looks down +z).
            intrinsics: ``[4]`` = fx, fy, cx, cy in pixels.
            width, height: image size in pixels.

        A cell counts as seen when its centre, in front of a camera, projects inside the image
        grown by the cell's projected diagonal (so a partly visible cell is kept).
        """
        device = self.density.device
        poses = poses.to(device=device, dtype=torch.float32)
        fx, fy, cx, cy = intrinsics.to(device=device, dtype=torch.float32).tolist()
        rotations = poses[:, :3, :3]  # camera coordinates: (p - origin) @ R
        origins = poses[:, :3, 3]
        seen = torch.zeros_like(self.seen)
        for c in range(self.num_cascades):
            radius = math.sqrt(3) * self.cell_sizes[c] / 2
            for start in range(0, self.resolution**3, chunk):
                cells = torch.arange(start, min(start + chunk, self.resolution**3), device=device)
                cells = cells[self.seen[c, cells]]
                points = self.cell_centers(c, cells)
                visible = torch.zeros(points.shape[0], dtype=torch.bool, device=device)
                for f in range(0, poses.shape[0], frames_per_batch):  # seen cells are not tested again
                    todo = (~visible).nonzero().squeeze(-1)
                    if todo.numel() == 0:
                        break
                    batch = slice(f, f + frames_per_batch)
                    cam = (points[todo].unsqueeze(0) - origins[batch].unsqueeze(1)) @ rotations[batch]  # [B, M, 3]
                    z = cam[..., 2]
                    safe_z = z.clamp(min=1e-6)
                    margin_x, margin_y = fx * radius / safe_z, fy * radius / safe_z
                    u = fx * cam[..., 0] / safe_z + cx
                    v = fy * cam[..., 1] / safe_z + cy
                    inside = (
                        (z > -radius)
                        & (u > -margin_x) & (u < width + margin_x)
                        & (v > -margin_y) & (v < height + margin_y)
                    )
                    visible[todo[inside.any(dim=0)]] = True
                seen[c, cells] = visible
        self.seen.copy_(seen)
        self.frustum_marked.fill_(True)
        self._threshold()

    # -- updates -------------------------------------------------------------------------------

    @torch.no_grad()
    def update(
        self, density_fns: DensityFn | Sequence[DensityFn], *, end_of_sweep: bool = True, chunk: int = 65536
    ) -> None:
        """Fold the max density over conditions into the current sweep; commit it if the sweep ends.

        Args:
            density_fns: one callable or several; each maps ``[N, 3]`` points to ``[N]`` densities
                (one condition) or ``[B, N]`` (B conditions). The max over all of them is taken.
            end_of_sweep: this batch completes a sweep over all conditions (see module docstring);
                the default treats the given conditions as all of them.
        """
        fns = [density_fns] if callable(density_fns) else list(density_fns)
        if not fns:
            raise ValueError("OccupancyGrid.update needs at least one density function")
        device = self.density.device
        for c in range(self.num_cascades):
            if self.updates.item() == 0 or self.update_fraction >= 1:
                probe = self.seen[c]
            else:
                lottery = torch.rand(self.resolution**3, device=device) < self.update_fraction
                probe = self.seen[c] & (self._grow(self.occupied[c : c + 1], 1)[0] | lottery)
            cells = probe.nonzero().squeeze(-1)
            new = torch.zeros(cells.shape[0], device=device)
            size = self.cell_sizes[c]
            for start in range(0, cells.shape[0], chunk):
                part = cells[start : start + chunk]
                x = self.cell_centers(c, part) + (torch.rand(part.shape[0], 3, device=device) - 0.5) * size
                for fn in fns:
                    sigma = fn(x).float()
                    if sigma.dim() == 2:
                        sigma = sigma.amax(dim=0)
                    new[start : start + chunk] = torch.maximum(new[start : start + chunk], sigma)
            self.sweep_max[c, cells] = torch.maximum(self.sweep_max[c, cells], new)
        if end_of_sweep:
            self.commit()
        else:
            self._threshold()
        self.updates += 1

    @torch.no_grad()
    def commit(self) -> None:
        """End a sweep: ``density <- max(decay * density, sweep_max)``; start a new sweep."""
        torch.maximum(self.density * self.decay, self.sweep_max, out=self.density)
        self.sweep_max.zero_()
        self._threshold()

    @property
    def values(self) -> Tensor:
        """``[num_cascades, resolution^3]`` the max density each cell is known to reach."""
        return torch.maximum(self.density, self.sweep_max)

    def _threshold(self) -> None:
        values = self.values
        seen_values = values[self.seen]
        mean = seen_values.mean().item() if seen_values.numel() else 0.0
        # ">=" keeps every seen cell while nothing stands out (e.g. an all-empty field early in
        # training): pruning must never leave the renderer without samples to learn from.
        occupied = self._grow(values >= min(self.density_threshold, mean), self.dilation)
        self.occupied.copy_(occupied & self.seen)
        self._update_box()

    def _grow(self, cells: Tensor, radius: int) -> Tensor:
        """``[C, resolution^3]`` bool -> the same cells plus their neighbours within ``radius`` cells."""
        if radius <= 0:
            return cells
        r = self.resolution
        grown = F.max_pool3d(cells.float().view(-1, 1, r, r, r), 2 * radius + 1, stride=1, padding=radius)
        return grown.view_as(cells) > 0

    def _update_box(self) -> None:
        """Axis-aligned box around all occupied cells (rays are marched only through it)."""
        lo = torch.full((3,), float("inf"), device=self.density.device)
        hi = torch.full((3,), float("-inf"), device=self.density.device)
        for c in range(self.num_cascades):
            cells = self.occupied[c].nonzero().squeeze(-1)
            if cells.numel() == 0:
                continue
            centers = self.cell_centers(c, cells)
            half = self.cell_sizes[c] / 2
            lo = torch.minimum(lo, centers.amin(dim=0) - half)
            hi = torch.maximum(hi, centers.amax(dim=0) + half)
        self.occupied_box.copy_(torch.stack([lo, hi]))

    def synchronize(self) -> None:
        """Under distributed training, make every rank's grid the element-wise max of all ranks'."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(self.density, op=torch.distributed.ReduceOp.MAX)
            torch.distributed.all_reduce(self.sweep_max, op=torch.distributed.ReduceOp.MAX)
            self._threshold()

    @property
    def occupancy_ratio(self) -> float:
        """Share of the seen cells that are occupied."""
        seen = self.seen.sum().clamp(min=1)
        return (self.occupied.sum() / seen).item()


class ConditionSweep(nn.Module):
    """Visits every training condition once per sweep, ``batch_size`` at a time, in a new order each sweep.

    The order of sweep ``s`` is a permutation seeded by ``(seed, s)``, so the only state is the
    number of batches drawn (a buffer): a resumed run continues the same sweep.

    Example:
        >>> sweep = ConditionSweep(batch_size=2)
        >>> [sweep.next_batch(5)[1] for _ in range(4)]
        [False, False, True, False]
    """

    def __init__(self, batch_size: int = 8, seed: int = 0) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"ConditionSweep batch_size must be >= 1, got {batch_size}")
        self.batch_size, self.seed = batch_size, seed
        self.register_buffer("batches", torch.zeros((), dtype=torch.long))

    def batches_per_sweep(self, num_conditions: int) -> int:
        return max(1, math.ceil(num_conditions / self.batch_size))

    def next_batch(self, num_conditions: int) -> tuple[list[int], bool]:
        """Indices of the next batch of conditions and whether it completes a sweep."""
        per_sweep = self.batches_per_sweep(num_conditions)
        sweep, k = divmod(int(self.batches.item()), per_sweep)
        order = torch.randperm(num_conditions, generator=torch.Generator().manual_seed(self.seed * 100_003 + sweep))
        self.batches += 1
        return order[k * self.batch_size : (k + 1) * self.batch_size].tolist(), k == per_sweep - 1
