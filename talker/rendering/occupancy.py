"""Occupancy grid with maximum-over-conditions pruning (RAD-NeRF / R2-Talker Sec. 3.4).

A conditioned head changes shape with its condition (the mouth opens), so a cell may be empty for
one frame and occupied for another. The grid keeps, per cell, the *maximum* density seen over a
set of training conditions, so a cell is skipped only if it is empty under every condition.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

DensityFn = Callable[[Tensor], Tensor]  # [N, 3] -> [N]


class OccupancyGrid(nn.Module):
    """A ``resolution^3`` grid over ``[-bound, bound]^3`` of decayed maximum densities.

    Args:
        bound: half side of the box.
        resolution: cells per axis.
        decay: factor applied to stored densities before each update (forgets stale geometry).
        density_threshold: a cell is occupied if its density reaches
            ``min(density_threshold, mean density)``.
        update_fraction: fraction of cells re-evaluated per update after the first full pass.

    All state lives in buffers, so it is checkpointed and moves with ``.to(device)``.
    """

    def __init__(
        self,
        bound: float = 1.0,
        resolution: int = 64,
        decay: float = 0.95,
        density_threshold: float = 1.0,
        update_fraction: float = 0.25,
    ) -> None:
        super().__init__()
        self.bound = bound
        self.resolution = resolution
        self.decay = decay
        self.density_threshold = density_threshold
        self.update_fraction = update_fraction
        self.register_buffer("density", torch.zeros(resolution**3))
        # Everything counts as occupied until the first update has looked at every cell.
        self.register_buffer("occupied", torch.ones(resolution**3, dtype=torch.bool))
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def cell_index(self, x: Tensor) -> Tensor:
        """``[N, 3]`` points -> ``[N]`` flat cell indices (points are clamped into the box)."""
        ijk = ((x + self.bound) / (2 * self.bound) * self.resolution).long().clamp(0, self.resolution - 1)
        return (ijk[:, 0] * self.resolution + ijk[:, 1]) * self.resolution + ijk[:, 2]

    def cell_centers(self, cells: Tensor) -> Tensor:
        """``[M]`` flat indices -> ``[M, 3]`` cell centres."""
        r = self.resolution
        ijk = torch.stack([cells // (r * r), (cells // r) % r, cells % r], dim=-1).to(self.density.dtype)
        return (ijk + 0.5) / r * (2 * self.bound) - self.bound

    def query(self, x: Tensor) -> Tensor:
        """``[N, 3] -> [N]`` bool: may the point carry density? Points outside the box: False."""
        inside = (x.abs() <= self.bound).all(dim=-1)
        return inside & self.occupied[self.cell_index(x)]

    @torch.no_grad()
    def update(self, density_fns: Sequence[DensityFn], chunk: int = 65536) -> None:
        """Fold the max density over ``density_fns`` (one per condition) into the grid.

        Each chosen cell is probed at one uniformly jittered point; the first update probes every
        cell, later ones a random ``update_fraction`` of them.
        """
        if not density_fns:
            raise ValueError("OccupancyGrid.update needs at least one density function")
        n = self.density.numel()
        device = self.density.device
        if self.updates.item() == 0 or self.update_fraction >= 1:
            cells = torch.arange(n, device=device)
        else:
            cells = torch.randperm(n, device=device)[: max(1, int(n * self.update_fraction))]
        cell_size = 2 * self.bound / self.resolution
        new = torch.zeros(cells.shape[0], device=device, dtype=self.density.dtype)
        for start in range(0, cells.shape[0], chunk):
            part = cells[start : start + chunk]
            x = self.cell_centers(part) + (torch.rand(part.shape[0], 3, device=device) - 0.5) * cell_size
            for fn in density_fns:
                new[start : start + chunk] = torch.maximum(new[start : start + chunk], fn(x).to(new.dtype))
        self.density[cells] = torch.maximum(self.density[cells] * self.decay, new)
        self._threshold()
        self.updates += 1

    def _threshold(self) -> None:
        # ">=" keeps every cell while nothing stands out (e.g. an all-empty field early in training):
        # pruning must never leave the renderer without samples to learn from.
        threshold = min(self.density_threshold, self.density.mean().item())
        self.occupied.copy_(self.density >= threshold)

    def synchronize(self) -> None:
        """Under distributed training, make every rank's grid the element-wise max of all ranks'."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(self.density, op=torch.distributed.ReduceOp.MAX)
            self._threshold()

    @property
    def occupancy_ratio(self) -> float:
        return self.occupied.float().mean().item()
