"""Tri-plane hash encoding (ER-NeRF, Li et al. 2023): three 2D hash grids on the xy, yz and xz planes.

A 3D point is projected onto the three axis-aligned planes; each projection is encoded by its own
2D multi-resolution hash grid and the three encodings are concatenated. ER-NeRF's head uses 12
levels of 1 feature, base resolution 64, 2^14 rows per level and finest resolution 512 * bound.

Example:
    >>> enc = TriPlaneHashGrid(num_levels=4, level_dim=1, base_resolution=8,
    ...                        log2_hashmap_size=10, desired_resolution=64)
    >>> enc(torch.rand(5, 3) * 2 - 1).shape
    torch.Size([5, 12])
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from talker.encoders.hashgrid import Backend, HashGrid

PLANES = {"xy": (0, 1), "yz": (1, 2), "xz": (0, 2)}


class TriPlaneHashGrid(nn.Module):
    """``[..., 3] in [-bound, bound] -> [..., 3 * num_levels * level_dim]`` (xy, yz, xz features).

    The planes are :class:`HashGrid` modules (so they run on either backend). ``level_mask`` (a
    persistent ``[num_levels]`` buffer, as on :class:`HashGrid`) switches levels of all three
    planes at once, so the level schedules apply to a tri-plane unchanged.
    """

    def __init__(
        self,
        num_levels: int = 12,
        level_dim: int = 1,
        base_resolution: int = 64,
        log2_hashmap_size: int = 14,
        desired_resolution: float = 512,
        bound: float = 1.0,
        gridtype: Literal["hash", "tiled"] = "hash",
        init_scale: float = 1e-4,
        backend: Backend = "torch",
    ) -> None:
        super().__init__()
        self.input_dim = 3
        self.num_levels = num_levels
        self.level_dim = level_dim
        self.bound = bound
        self.planes = nn.ModuleDict(
            {
                name: HashGrid(
                    2, num_levels, level_dim, base_resolution, log2_hashmap_size, desired_resolution,
                    bound, gridtype, init_scale, backend,
                )
                for name in PLANES
            }
        )
        self.register_buffer("level_mask", torch.ones(num_levels))

    @property
    def output_dim(self) -> int:
        return 3 * self.num_levels * self.level_dim

    def forward(self, x: Tensor) -> Tensor:
        features = []
        for name, (a, b) in PLANES.items():
            plane = self.planes[name]
            plane.level_mask.copy_(self.level_mask)  # one mask for all planes
            features.append(plane(x[..., [a, b]]))
        return torch.cat(features, dim=-1)
