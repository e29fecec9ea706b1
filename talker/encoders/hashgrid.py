"""Multi-resolution hash encoding (Mueller et al., "Instant NGP", 2022) in pure PyTorch.

The level layout follows tiny-cuda-nn so that a CUDA backend can share parameters:

- level ``l`` has scale ``s_l = base_resolution * per_level_scale**l - 1`` and
  ``resolution_l = ceil(s_l) + 1`` vertices per axis, where
  ``per_level_scale = (desired_resolution / base_resolution) ** (1 / (num_levels - 1))``;
- a point ``x in [0, 1]^D`` sits at ``x * s_l + 0.5`` in level ``l``'s vertex lattice;
- a level whose dense lattice fits in ``2**log2_hashmap_size`` entries is indexed densely
  (``sum_d c_d * resolution_l**d``); larger levels are hashed (xor of ``c_d * prime_d``);
  ``gridtype="tiled"`` never hashes and wraps the dense index instead;
- each level stores ``min(2**log2_hashmap_size, ceil8(resolution_l**D))`` entries of
  ``level_dim`` features, and features are interpolated (bi/trilinearly) from the ``2**D``
  surrounding vertices.

Example:
    >>> grid = HashGrid(input_dim=3, num_levels=4, level_dim=2, base_resolution=4,
    ...                 log2_hashmap_size=10, desired_resolution=32)
    >>> grid(torch.rand(5, 3) * 2 - 1).shape
    torch.Size([5, 8])
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

# tiny-cuda-nn's spatial hash primes (the first is 1 so that 1D hashing is the identity).
_PRIMES = (1, 2654435761, 805459861, 3674653429)


class HashGrid(nn.Module):
    """Multi-resolution hash grid: ``[..., D] in [-bound, bound] -> [..., num_levels * level_dim]``.

    Args:
        input_dim: 2 or 3.
        num_levels: number of resolution levels.
        level_dim: features per level.
        base_resolution: coarsest lattice resolution.
        log2_hashmap_size: log2 of the maximum number of entries per level.
        desired_resolution: finest lattice resolution (the papers give ``2048 * bound``).
        bound: inputs are expected in ``[-bound, bound]^D``; outside they are clamped.
        gridtype: ``"hash"`` (instant-NGP) or ``"tiled"`` (dense index wrapped modulo the table).
        init_scale: features start uniform in ``[-init_scale, init_scale]``.

    ``level_mask`` (a persistent buffer of shape ``[num_levels]``) scales each level's output; a
    zero entry switches the level off (its features are neither used nor trained). Coarse-to-fine
    schedules write to it; a checkpoint carries it so that inference sees the trained mask.
    """

    def __init__(
        self,
        input_dim: int = 3,
        num_levels: int = 16,
        level_dim: int = 2,
        base_resolution: int = 16,
        log2_hashmap_size: int = 19,
        desired_resolution: float = 2048,
        bound: float = 1.0,
        gridtype: Literal["hash", "tiled"] = "hash",
        init_scale: float = 1e-4,
    ) -> None:
        super().__init__()
        if input_dim not in (2, 3):
            raise ValueError(f"HashGrid input_dim must be 2 or 3, got {input_dim}")
        if gridtype not in ("hash", "tiled"):
            raise ValueError(f"HashGrid gridtype must be 'hash' or 'tiled', got {gridtype!r}")
        self.input_dim = input_dim
        self.num_levels = num_levels
        self.level_dim = level_dim
        self.base_resolution = base_resolution
        self.log2_hashmap_size = log2_hashmap_size
        self.desired_resolution = desired_resolution
        self.bound = bound
        self.gridtype = gridtype

        per_level_scale = (
            math.exp2(math.log2(desired_resolution / base_resolution) / (num_levels - 1)) if num_levels > 1 else 1.0
        )
        self.per_level_scale = per_level_scale
        max_entries = 2**log2_hashmap_size
        scales, resolutions, sizes, hashed = [], [], [], []
        for level in range(num_levels):
            scale = base_resolution * per_level_scale**level - 1.0
            resolution = math.ceil(scale) + 1
            dense = resolution**input_dim
            size = min(max_entries, int(math.ceil(dense / 8) * 8))
            scales.append(scale)
            resolutions.append(resolution)
            sizes.append(size)
            hashed.append(gridtype == "hash" and dense > size)
        offsets = [0]
        for size in sizes:
            offsets.append(offsets[-1] + size)

        self.register_buffer("scales", torch.tensor(scales, dtype=torch.float64), persistent=False)
        self.register_buffer("resolutions", torch.tensor(resolutions, dtype=torch.long), persistent=False)
        self.register_buffer("sizes", torch.tensor(sizes, dtype=torch.long), persistent=False)
        self.register_buffer("offsets", torch.tensor(offsets[:-1], dtype=torch.long), persistent=False)
        self.register_buffer("hashed", torch.tensor(hashed, dtype=torch.bool), persistent=False)
        self.register_buffer("level_mask", torch.ones(num_levels))
        self.register_buffer("corner_offsets", torch.tensor([0, 1]), persistent=False)
        self.register_buffer("primes", torch.tensor(_PRIMES[:input_dim], dtype=torch.long), persistent=False)

        self.embeddings = nn.Parameter(torch.empty(offsets[-1], level_dim).uniform_(-init_scale, init_scale))

    @property
    def output_dim(self) -> int:
        return self.num_levels * self.level_dim

    def extra_repr(self) -> str:
        return (
            f"input_dim={self.input_dim}, levels={self.num_levels}, level_dim={self.level_dim}, "
            f"resolution={self.base_resolution}..{self.desired_resolution:g}, "
            f"log2_hashmap_size={self.log2_hashmap_size}, gridtype={self.gridtype}, bound={self.bound}"
        )

    def vertex_rows(self, base: Tensor, levels: Tensor) -> Tensor:
        """Table rows of the ``2**D`` lattice vertices around each point.

        Args:
            base: ``[L, N, D]`` integer lower-corner coordinates in each level's lattice.
            levels: ``[L]`` level ids.
        Returns:
            ``[L, N, 2**D]`` rows of ``self.embeddings``, corners in ``itertools.product`` order.
        """
        num_levels, n, dims = base.shape
        res = self.resolutions[levels].view(-1, 1, 1)
        hashed_levels = self.hashed[levels].view(-1, 1, 1)
        rows = None
        for d in range(dims):
            coord = base[..., d : d + 1] + self.corner_offsets  # [L, N, 2]
            term = torch.where(hashed_levels, coord * self.primes[d], coord * res**d)
            if rows is None:
                rows = term
            else:  # dense levels sum the per-axis terms, hashed levels xor them
                a, b = rows.unsqueeze(-1), term.unsqueeze(-2)
                rows = torch.where(hashed_levels.unsqueeze(-1), a ^ b, a + b).flatten(2)
        rows = torch.where(hashed_levels, rows & 0xFFFFFFFF, rows)  # tiny-cuda-nn hashes in uint32
        return rows % self.sizes[levels].view(-1, 1, 1) + self.offsets[levels].view(-1, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Encode ``x`` of shape ``[..., D]`` (in ``[-bound, bound]``) into ``[..., L * C]``."""
        batch_shape = x.shape[:-1]
        x01 = ((x.reshape(-1, self.input_dim) + self.bound) / (2 * self.bound)).clamp(0.0, 1.0)
        out = x01.new_zeros(x01.shape[0], self.num_levels, self.level_dim)
        active = torch.nonzero(self.level_mask).squeeze(-1)
        if active.numel() > 0:
            scales = self.scales[active].to(x01.dtype)
            pos = x01.unsqueeze(0) * scales.view(-1, 1, 1) + 0.5  # [La, N, D]
            base = pos.floor()
            frac = pos - base
            rows = self.vertex_rows(base.long(), active)  # [La, N, K]
            # Corner weights: outer product over axes of (1 - frac, frac), same order as the rows.
            axis_weights = torch.stack([1 - frac, frac], dim=-1)  # [La, N, D, 2]
            weights = axis_weights[:, :, 0]
            for d in range(1, self.input_dim):
                weights = (weights.unsqueeze(-1) * axis_weights[:, :, d].unsqueeze(-2)).flatten(2)
            encoded = interpolate(self.embeddings, rows, weights)  # [La, N, C]
            encoded = encoded * self.level_mask[active].to(encoded.dtype).view(-1, 1, 1)
            out = out.to(encoded.dtype)
            out[:, active] = encoded.transpose(0, 1)
        return out.reshape(*batch_shape, self.output_dim)


class _Interpolate(torch.autograd.Function):
    """``out[l, n] = sum_k weights[l, n, k] * table[rows[l, n, k]]``.

    The backward scatters into the table with one ``bincount`` per feature channel, which is
    several times faster on CPU than autograd's accumulating ``index_put``, and recomputes the
    gathered features only when the weights (hence the input points) need a gradient.
    """

    @staticmethod
    def forward(ctx, table: Tensor, rows: Tensor, weights: Tensor) -> Tensor:
        feats = table.index_select(0, rows.reshape(-1)).view(*rows.shape, table.shape[1]).to(weights.dtype)
        ctx.save_for_backward(table, rows, weights)
        return torch.einsum("lnk,lnkc->lnc", weights, feats)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        table, rows, weights = ctx.saved_tensors
        grad_table = grad_weights = None
        if ctx.needs_input_grad[0]:
            flat_rows = rows.reshape(-1)
            contrib = (weights.unsqueeze(-1) * grad_out.unsqueeze(2)).reshape(-1, table.shape[1])
            grad_table = torch.stack(
                [
                    torch.bincount(flat_rows, weights=contrib[:, c], minlength=table.shape[0])
                    for c in range(table.shape[1])
                ],
                dim=1,
            ).to(table.dtype)
        if ctx.needs_input_grad[2]:
            feats = table.index_select(0, rows.reshape(-1)).view(*rows.shape, table.shape[1]).to(weights.dtype)
            grad_weights = torch.einsum("lnkc,lnc->lnk", feats, grad_out)
        return grad_table, None, grad_weights


def interpolate(table: Tensor, rows: Tensor, weights: Tensor) -> Tensor:
    """Weighted gather ``[T, C] x [L, N, K] x [L, N, K] -> [L, N, C]`` (see ``_Interpolate``)."""
    return _Interpolate.apply(table, rows, weights)
