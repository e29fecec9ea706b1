"""Multi-resolution hash encoding (Mueller et al., "Instant NGP", 2022) with swappable backends.

One module, :class:`HashGrid`, owns the parameters (an fp32 table ``embeddings [T, C]``) and the
level layout; the lookup runs on a backend:

- ``"torch"``: pure PyTorch, CPU and CUDA, the reference (this file);
- ``"tcnn"``: tiny-cuda-nn's fused CUDA kernel (optional, see :mod:`talker.encoders.tcnn`);
- ``"auto"``: tiny-cuda-nn for CUDA inputs when it is installed and can express the grid, else torch.

Both backends read the same table, so a checkpoint trained with one loads into the other.

The level layout is tiny-cuda-nn's (``encodings/grid.h``), computed with its float32 arithmetic so
that the table layouts agree entry for entry:

- level ``l`` has scale ``s_l = exp2(l * log2(per_level_scale)) * base_resolution - 1`` and
  ``resolution_l = ceil(s_l) + 1`` vertices per axis, where
  ``per_level_scale = (desired_resolution / base_resolution) ** (1 / (num_levels - 1))``;
- a point ``x in [0, 1]^D`` sits at ``x * s_l + 0.5`` in level ``l``'s vertex lattice;
- level ``l`` stores ``min(2**log2_hashmap_size, ceil8(resolution_l**D))`` rows of ``level_dim``
  features; a level whose dense lattice fits is indexed densely (``sum_d c_d * resolution_l**d``),
  a larger one is hashed (xor of ``c_d * prime_d``, in uint32) modulo its size;
  ``gridtype="tiled"`` never hashes and wraps the dense index instead (torch-ngp's ``tiledgrid``,
  which RAD-NeRF's encoders use);
- features are interpolated (bi/trilinearly) from the ``2**D`` surrounding vertices.

Example:
    >>> grid = HashGrid(input_dim=3, num_levels=4, level_dim=2, base_resolution=4,
    ...                 log2_hashmap_size=10, desired_resolution=32)
    >>> grid(torch.rand(5, 3) * 2 - 1).shape
    torch.Size([5, 8])
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

# tiny-cuda-nn's spatial hash primes (the first is 1 so that 1D hashing is the identity).
PRIMES = (1, 2654435761, 805459861, 3674653429)

Backend = Literal["torch", "tcnn", "auto"]


def level_scales(num_levels: int, base_resolution: int, per_level_scale: float) -> list[float]:
    """Per-level lattice scales ``s_l``, computed in float32 exactly as tiny-cuda-nn does."""
    log2_scale = np.log2(np.float32(per_level_scale))
    return [
        float(np.exp2(np.float32(level) * log2_scale) * np.float32(base_resolution) - np.float32(1.0))
        for level in range(num_levels)
    ]


class HashGrid(nn.Module):
    """Multi-resolution hash grid: ``[..., D] in [-bound, bound] -> [..., num_levels * level_dim]``.

    Args:
        input_dim: 2 or 3.
        num_levels: number of resolution levels.
        level_dim: features per level.
        base_resolution: coarsest lattice resolution.
        log2_hashmap_size: log2 of the maximum number of rows per level.
        desired_resolution: finest lattice resolution (the papers give ``2048 * bound``).
        bound: inputs are expected in ``[-bound, bound]^D``; outside they are clamped.
        gridtype: ``"hash"`` (instant-NGP) or ``"tiled"`` (dense index wrapped modulo the table).
        init_scale: features start uniform in ``[-init_scale, init_scale]``.
        backend: ``"torch"``, ``"tcnn"`` or ``"auto"`` (module docstring).

    ``level_mask`` (a persistent buffer of shape ``[num_levels]``) scales each level's output; a
    zero entry switches the level off (its features are neither used nor trained). Coarse-to-fine
    schedules write to it; a checkpoint carries it so that inference sees the trained mask.

    Precision: the table stays fp32 and the lookup always runs in fp32 (fine levels need fp32
    positions), also under ``torch.autocast``; the MLPs after it run in the autocast dtype.
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
        backend: Backend = "torch",
    ) -> None:
        super().__init__()
        if input_dim not in (2, 3):
            raise ValueError(f"HashGrid input_dim must be 2 or 3, got {input_dim}")
        if gridtype not in ("hash", "tiled"):
            raise ValueError(f"HashGrid gridtype must be 'hash' or 'tiled', got {gridtype!r}")
        if backend not in ("torch", "tcnn", "auto"):
            raise ValueError(f"HashGrid backend must be 'torch', 'tcnn' or 'auto', got {backend!r}")
        self.input_dim = input_dim
        self.num_levels = num_levels
        self.level_dim = level_dim
        self.base_resolution = base_resolution
        self.log2_hashmap_size = log2_hashmap_size
        self.desired_resolution = desired_resolution
        self.bound = bound
        self.gridtype = gridtype
        self.backend = backend

        self.per_level_scale = (
            math.exp2(math.log2(desired_resolution / base_resolution) / (num_levels - 1)) if num_levels > 1 else 1.0
        )
        max_rows = 2**log2_hashmap_size
        scales = level_scales(num_levels, base_resolution, self.per_level_scale)
        resolutions, sizes, hashed = [], [], []
        for scale in scales:
            resolution = math.ceil(scale) + 1
            dense = resolution**input_dim
            size = min(max_rows, int(math.ceil(dense / 8) * 8))
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
        self.register_buffer("primes", torch.tensor(PRIMES[:input_dim], dtype=torch.long), persistent=False)
        # Python copies of the layout: the lookup plans per level group without device syncs.
        self._hashed = hashed
        self._sizes = sizes
        self._resolutions = resolutions

        self.embeddings = nn.Parameter(torch.empty(offsets[-1], level_dim).uniform_(-init_scale, init_scale))
        self._tcnn = None  # the tiny-cuda-nn encoding, built on first CUDA use (never a submodule)
        self._compiled = False  # lookups through torch.compile (compile_lookup)
        if backend == "tcnn":
            from talker.encoders import tcnn

            tcnn.check_supported(self)

    @property
    def output_dim(self) -> int:
        return self.num_levels * self.level_dim

    def extra_repr(self) -> str:
        return (
            f"input_dim={self.input_dim}, levels={self.num_levels}, level_dim={self.level_dim}, "
            f"resolution={self.base_resolution}..{self.desired_resolution:g}, "
            f"log2_hashmap_size={self.log2_hashmap_size}, gridtype={self.gridtype}, bound={self.bound}, "
            f"backend={self.backend}"
        )

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_tcnn"] = None  # native handles do not pickle; rebuilt on first use
        return state

    # -- lookup ------------------------------------------------------------------------------

    def normalize(self, x: Tensor) -> Tensor:
        """``[..., D]`` in ``[-bound, bound]`` -> ``[N, D]`` fp32 in ``[0, 1]`` (clamped)."""
        x = x.reshape(-1, self.input_dim)
        dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        return ((x.to(dtype) + self.bound) / (2 * self.bound)).clamp(0.0, 1.0)

    def use_tcnn(self, x: Tensor) -> bool:
        if self.backend == "torch":
            return False
        from talker.encoders import tcnn

        if self.backend == "tcnn":
            if not x.is_cuda:
                raise RuntimeError("HashGrid backend 'tcnn' needs CUDA inputs; use backend='torch' or 'auto' on CPU")
            return True
        return x.is_cuda and x.dtype != torch.float64 and tcnn.available() and tcnn.supports(self)

    def forward(self, x: Tensor) -> Tensor:
        """Encode ``x`` of shape ``[..., D]`` (in ``[-bound, bound]``) into ``[..., L * C]`` (fp32)."""
        batch_shape = x.shape[:-1]
        with torch.autocast(x.device.type, enabled=False):
            x01 = self.normalize(x)
            if self.use_tcnn(x):
                from talker.encoders import tcnn

                out = tcnn.encode(self, x01)
            elif self._compiled and not (torch.is_grad_enabled() and x.requires_grad):
                out = self.encode_fused(x01, compiled=True)
            else:
                out = self.encode_torch(x01)
        return out.reshape(*batch_shape, self.output_dim)

    def compile_lookup(self, enabled: bool = True) -> HashGrid:
        """Run the torch backend's lookups through ``torch.compile`` of :func:`fused_lookup`: the
        index arithmetic, the gathers and the interpolation of a level group become one loop (C++ on
        CPU, Triton on CUDA), and a lookup that trains the table keeps no corner rows or weights for
        its backward (:class:`_FusedLookup` recomputes them). The first calls compile (about 30 s
        each for the forward and the backward on 2 CPU cores); a lookup whose points need a gradient
        (RAD-NeRF's ambient grid) stays on :meth:`encode_torch`. Returns the grid."""
        self._compiled = enabled
        return self

    def encode_fused(self, x01: Tensor, compiled: bool = False) -> Tensor:
        """:meth:`encode_torch` through :func:`fused_lookup`, one call per level group (dense,
        hashed): ``[N, D]`` in ``[0, 1]`` -> ``[N, L * C]``; the table's gradient, not the points'.
        Every level of a group is looked up and scaled by its ``level_mask`` entry (a mask change
        never recompiles)."""
        outs = []
        for hashed in (False, True):
            levels = [lv for lv in range(self.num_levels) if self._hashed[lv] == hashed]
            if not levels:
                continue
            index = torch.tensor(levels, device=x01.device)
            mult = torch.stack([  # per axis: the hash prime, or the dense lattice's stride
                torch.full((len(levels), 1), PRIMES[d], dtype=torch.long, device=x01.device) if hashed
                else (self.resolutions[index] ** d).view(-1, 1)
                for d in range(self.input_dim)
            ])
            layout = (self.scales[index].to(x01.dtype).view(-1, 1), mult, self.sizes[index].view(-1, 1),
                      self.offsets[index].view(-1, 1))
            if torch.is_grad_enabled() and self.embeddings.requires_grad:
                encoded = _FusedLookup.apply(self.embeddings, x01, *layout, self.input_dim, hashed, compiled)
            else:
                encoded = fused_lookup(self.input_dim, hashed, compiled)(x01, self.embeddings, *layout)
            outs.append(encoded * self.level_mask[index].to(encoded.dtype).view(-1, 1, 1))
        # Dense levels are the coarse ones: the groups are in level order.
        return torch.cat(outs).transpose(0, 1).reshape(x01.shape[0], self.output_dim)

    def vertex_rows(self, base: Tensor, levels: Tensor | list[int]) -> Tensor:
        """Table rows of the ``2**D`` lattice vertices around each point.

        Args:
            base: ``[L, N, D]`` integer lower-corner coordinates in each level's lattice.
            levels: ``[L]`` level ids; fastest when all dense or all hashed.
        Returns:
            ``[L, N, 2**D]`` rows of ``self.embeddings`` (int32 where no index can overflow it,
            else int64); corner ``k`` has offset bit ``(k >> (D - 1 - d)) & 1`` along axis ``d``
            (``itertools.product`` order).
        """
        return torch.stack(self.corner_rows(base.unbind(-1), levels), dim=-1)

    def corner_rows(self, coords: Sequence[Tensor], levels: Tensor | Sequence[int]) -> list[Tensor]:
        """:meth:`vertex_rows` as one ``[L, N]`` tensor per corner, from one ``[L, N]`` coordinate
        tensor per axis: every operation is then on whole contiguous tensors, which on CPU is
        several times faster than the same arithmetic broadcast over trailing axes of size 2."""
        level_list = levels.tolist() if isinstance(levels, Tensor) else list(levels)
        flags = [self._hashed[i] for i in level_list]
        all_hashed, none_hashed = all(flags), not any(flags)
        # Hashes are uint32 (int32 arithmetic wraps to the same low bits); dense indices are
        # below resolution**D. int32 halves the memory traffic, which bounds this on CPU.
        small = all(self._resolutions[i] ** self.input_dim < 2**31 for i in level_list)
        fits_int32 = (all_hashed or (none_hashed and small)) and self.embeddings.shape[0] < 2**31
        itype = torch.int32 if fits_int32 else torch.long
        device = coords[0].device
        levels = torch.as_tensor(level_list, dtype=torch.long, device=device)
        strides = torch.ones(len(level_list), 1, dtype=itype, device=device)
        rows: list[Tensor] = []
        for d in range(self.input_dim):
            prime = PRIMES[d] - 2**32 if itype == torch.int32 and PRIMES[d] >= 2**31 else PRIMES[d]
            if all_hashed:
                scale = torch.tensor(prime, dtype=itype, device=device)
            elif none_hashed:
                scale = strides
            else:
                scale = torch.where(self.hashed[levels].view(-1, 1), torch.tensor(prime, dtype=itype), strides)
            strides = strides * self.resolutions[levels].view(-1, 1).to(itype)
            lower = coords[d].to(itype) * scale
            ends = (lower, lower + scale)  # (c + 1) * s = c * s + s
            if not rows:
                rows = list(ends)
            elif all_hashed:  # dense levels sum the per-axis terms, hashed levels xor them
                rows = [r ^ e for r in rows for e in ends]
            elif none_hashed:
                rows = [r + e for r in rows for e in ends]
            else:
                hashed = self.hashed[levels].view(-1, 1)
                rows = [torch.where(hashed, r ^ e, r + e) for r in rows for e in ends]
        sizes = self.sizes[levels].view(-1, 1).to(itype)
        if all_hashed and all(self._sizes[i] & (self._sizes[i] - 1) == 0 for i in level_list):
            rows = [r & (sizes - 1) for r in rows]  # power-of-two tables: the modulo of the uint32 hash is a mask
        elif none_hashed:  # the upper corner of a point on the box's far face is one past the lattice: it wraps
            for r in rows:
                r.remainder_(sizes)
        else:
            hashed = self.hashed[levels].view(-1, 1)
            rows = [torch.where(hashed, r & 0xFFFFFFFF, r) % sizes for r in rows]  # tiny-cuda-nn hashes in uint32
        offsets = self.offsets[levels].view(-1, 1).to(itype)
        return [r + offsets for r in rows]

    def encode_torch(self, x01: Tensor) -> Tensor:
        """The pure-PyTorch lookup: ``[N, D]`` in ``[0, 1]`` -> ``[N, L * C]``."""
        n = x01.shape[0]
        out = x01.new_zeros(self.num_levels, n, self.level_dim)
        mask = self.level_mask.tolist()
        active = [level for level in range(self.num_levels) if mask[level] != 0]
        axes = x01.t().contiguous()  # [D, N]: per-axis arithmetic on contiguous tensors
        # Dense and hashed levels are indexed by different formulas: look each group up separately.
        for group in (
            [lv for lv in active if not self._hashed[lv]],
            [lv for lv in active if self._hashed[lv]],
        ):
            if not group:
                continue
            levels = torch.tensor(group, device=x01.device)
            scales = self.scales[levels].to(x01.dtype).view(-1, 1)
            coords, fracs = [], []
            for d in range(self.input_dim):
                pos = axes[d] * scales + 0.5  # [Lg, N]
                base = pos.floor()
                fracs.append(pos - base)
                coords.append(base.long())
            rows = self.corner_rows(coords, group)  # 2**D x [Lg, N]
            # Corner weights: products over axes of (1 - frac, frac), in the rows' corner order.
            weights = [1 - fracs[0], fracs[0]]
            for d in range(1, self.input_dim):
                ends = (1 - fracs[d], fracs[d])
                weights = [w * e for w in weights for e in ends]
            encoded = interpolate_corners(self.embeddings, torch.stack(rows), torch.stack(weights))  # [Lg, N, C]
            level_scale = self.level_mask[levels].to(encoded.dtype).view(-1, 1, 1)
            out = out.to(encoded.dtype)
            out[levels] = encoded * level_scale
        return out.transpose(0, 1).reshape(n, self.output_dim)


def hash_grids(module: nn.Module) -> list[HashGrid]:
    """Every :class:`HashGrid` in ``module`` (itself included)."""
    return [grid for grid in module.modules() if isinstance(grid, HashGrid)]


@contextlib.contextmanager
def compiled_lookups(module: nn.Module, enabled: bool = True) -> Iterator[None]:
    """Within the block, every :class:`HashGrid` of ``module`` looks up through ``torch.compile``
    (``enabled``) or eagerly; each grid's own setting is restored after it."""
    grids = hash_grids(module)
    before = [grid._compiled for grid in grids]
    for grid in grids:
        grid.compile_lookup(enabled)
    try:
        yield
    finally:
        for grid, compiled in zip(grids, before):
            grid.compile_lookup(compiled)


_COMPILED: dict[tuple[str, int, bool], Callable[..., Tensor]] = {}


def fused_lookup(dims: int, hashed: bool, compiled: bool = False) -> Callable[..., Tensor]:
    """The lookup of a group of levels indexed alike, written corner by corner as whole-tensor
    operations that ``torch.compile`` fuses into one pass (eager, it is slower than
    :meth:`HashGrid.encode_torch`: it broadcasts over the trailing channel axis).

    Returns ``f(x01 [N, D], table [T, C], scales [L, 1], mult [D, L, 1], sizes [L, 1], offsets [L, 1])
    -> [L, N, C]``; ``mult`` holds each axis's hash prime (``hashed``) or dense stride. Hashes are
    computed in int64; modulo a hashed level's power-of-two size they are tiny-cuda-nn's uint32 hash.
    ``compiled``: the ``torch.compile`` of it (one per ``(dims, hashed)``, any number of points)."""
    return _fused("lookup", dims, hashed, compiled)


def _fused(kind: str, dims: int, hashed: bool, compiled: bool) -> Callable:
    if compiled:
        if (kind, dims, hashed) not in _COMPILED:
            _COMPILED[kind, dims, hashed] = torch.compile(_fused(kind, dims, hashed, False), dynamic=True)
        return _COMPILED[kind, dims, hashed]
    corner_list = list(itertools.product((False, True), repeat=dims))  # the rows' corner order (vertex_rows)

    def corner_terms(x01: Tensor, scales: Tensor, mult: Tensor, sizes: Tensor, offsets: Tensor):
        pos = x01.t().unsqueeze(1) * scales + 0.5  # [D, L, N]
        base = pos.floor()
        frac, coords = pos - base, base.long()
        for corner in corner_list:
            index = weight = None
            for d, upper in enumerate(corner):
                term = (coords[d] + 1 if upper else coords[d]) * mult[d]
                index = term if index is None else (index ^ term if hashed else index + term)
                side = frac[d] if upper else 1 - frac[d]
                weight = side if weight is None else weight * side
            # A hashed level has 2**log2_hashmap_size rows: the int64 hash modulo it is the uint32
            # hash's; a dense level's far-face corner wraps around.
            index = index % sizes
            yield index + offsets, weight

    def lookup(x01: Tensor, table: Tensor, scales: Tensor, mult: Tensor, sizes: Tensor,
               offsets: Tensor) -> Tensor:
        out = None
        for rows, weight in corner_terms(x01, scales, mult, sizes, offsets):
            term = weight.unsqueeze(-1) * table[rows].to(x01.dtype)
            out = term if out is None else out + term
        return out

    def scatter(x01: Tensor, grad_out: Tensor, table: Tensor, scales: Tensor, mult: Tensor, sizes: Tensor,
                offsets: Tensor) -> Tensor:
        """The table's gradient ``[T, C]`` of ``lookup`` given ``grad_out [L, N, C]``."""
        grad = torch.zeros_like(table)
        for rows, weight in corner_terms(x01, scales, mult, sizes, offsets):
            contrib = (weight.unsqueeze(-1) * grad_out).reshape(-1, table.shape[1])
            grad = grad.index_put((rows.reshape(-1),), contrib, accumulate=True)
        return grad

    return {"lookup": lookup, "scatter": scatter}[kind]


class _FusedLookup(torch.autograd.Function):
    """:func:`fused_lookup` that trains the table: the forward keeps no corner rows or weights; the
    backward recomputes them corner by corner and adds each corner's share into the table's gradient
    in the same pass (``index_put`` with ``accumulate``, compiled with the lookup). Points get no
    gradient (a lookup whose points need one runs on ``encode_torch``)."""

    @staticmethod
    def forward(ctx, table: Tensor, x01: Tensor, scales: Tensor, mult: Tensor, sizes: Tensor, offsets: Tensor,
                dims: int, hashed: bool, compiled: bool) -> Tensor:
        ctx.save_for_backward(table, x01, scales, mult, sizes, offsets)
        ctx.layout = (dims, hashed, compiled)
        return fused_lookup(dims, hashed, compiled)(x01, table, scales, mult, sizes, offsets)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        table, x01, scales, mult, sizes, offsets = ctx.saved_tensors
        dims, hashed, compiled = ctx.layout
        grad = _fused("scatter", dims, hashed, compiled)(x01, grad_out, table, scales, mult, sizes, offsets)
        return grad, None, None, None, None, None, None, None, None


def _gather_channels(table: Tensor, rows: Tensor, dtype: torch.dtype) -> list[Tensor]:
    """``table[rows, c]`` for each channel ``c``, each shaped like ``rows``.

    Many lookups gather one contiguous column of the table at a time (the column copies cost less
    than gathering rows of a few bytes); few lookups in a large table (R2-Talker's landmark grid:
    340 points, a million rows) gather whole rows, so as not to copy the table."""
    flat = rows.reshape(-1)
    if rows.numel() * table.shape[1] < table.shape[0]:
        return list(table.index_select(0, flat).to(dtype).view(*rows.shape, table.shape[1]).unbind(-1))
    return [column.contiguous().index_select(0, flat).view(rows.shape) for column in table.t().to(dtype)]


class _InterpolateCorners(torch.autograd.Function):
    """``out[l, n, c] = sum_k weights[k, l, n] * table[rows[k, l, n], c]``, corner-major.

    Products and sums are over ``[L, N]`` tensors, one channel at a time (the sum runs over ``k``
    in order, as ``einsum`` does). The backward scatters into the table with ``bincount`` on CPU
    (several times faster than autograd's accumulating ``index_put``) and ``index_add_`` on CUDA
    (atomic adds), and gathers the features again only when the weights (hence the input points)
    need a gradient.
    """

    @staticmethod
    def forward(ctx, table: Tensor, rows: Tensor, weights: Tensor) -> Tensor:
        ctx.save_for_backward(table, rows, weights)
        channels = []
        for feats in _gather_channels(table, rows, weights.dtype):
            acc = weights[0] * feats[0]
            for k in range(1, rows.shape[0]):
                acc = acc + weights[k] * feats[k]
            channels.append(acc)
        return torch.stack(channels, dim=-1)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        table, rows, weights = ctx.saved_tensors
        grad_table = grad_weights = None
        num_rows, num_channels = table.shape
        grads = [g.contiguous() for g in grad_out.unbind(-1)]  # C x [L, N]
        if ctx.needs_input_grad[0]:
            flat_rows = rows.reshape(-1)
            if table.is_cuda:
                contrib = (weights.unsqueeze(-1) * grad_out.unsqueeze(0)).reshape(-1, num_channels)
                grad_table = torch.zeros(table.shape, dtype=contrib.dtype, device=table.device)
                grad_table.index_add_(0, flat_rows, contrib)
            elif rows.numel() * num_channels < num_rows:
                # Few lookups in a large table: one bincount over (row, channel) bins fills the
                # [T, C] gradient directly instead of C gradients of T entries stacked.
                bins = (flat_rows.long().unsqueeze(-1) * num_channels + torch.arange(num_channels)).reshape(-1)
                values = torch.stack([(weights * g).reshape(-1) for g in grads], dim=-1).reshape(-1)
                grad_table = torch.bincount(bins, weights=values, minlength=table.numel()).view(table.shape)
            else:  # one contiguous weight vector per channel: bincount's fast path
                grad_table = torch.stack(
                    [torch.bincount(flat_rows, weights=(weights * g).reshape(-1), minlength=num_rows) for g in grads],
                    dim=1,
                )
            grad_table = grad_table.to(table.dtype)
        if ctx.needs_input_grad[2]:
            feats = _gather_channels(table, rows, weights.dtype)
            grad_weights = feats[0] * grads[0]
            for f, g in zip(feats[1:], grads[1:]):
                grad_weights = grad_weights + f * g
        return grad_table, None, grad_weights


def interpolate_corners(table: Tensor, rows: Tensor, weights: Tensor) -> Tensor:
    """Weighted gather ``[T, C] x [K, L, N] x [K, L, N] -> [L, N, C]`` (see ``_InterpolateCorners``)."""
    return _InterpolateCorners.apply(table, rows, weights)


def interpolate(table: Tensor, rows: Tensor, weights: Tensor) -> Tensor:
    """Weighted gather ``[T, C] x [L, N, K] x [L, N, K] -> [L, N, C]``: :func:`interpolate_corners`
    of the same corners laid out point-major."""
    return interpolate_corners(table, rows.permute(2, 0, 1).contiguous(), weights.permute(2, 0, 1).contiguous())
