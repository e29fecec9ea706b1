"""The tiny-cuda-nn backend of :class:`~talker.encoders.hashgrid.HashGrid` (optional, CUDA only).

tiny-cuda-nn is not on PyPI; on a CUDA machine install it from its repository (the ``tcnn`` extra)::

    pip install -c constraints.txt -e ".[tcnn]"

Parameter layout. tiny-cuda-nn stores a grid encoding as one flat vector ``params``; level ``l``
occupies rows ``offset_l .. offset_l + size_l`` and row ``r``'s feature ``f`` is
``params[r * level_dim + f]`` (``grid_index`` in ``encodings/grid.h``). ``HashGrid.embeddings`` is
the same memory viewed as ``[rows, level_dim]``, with the same offsets and sizes (both follow
``grid.h``'s float32 level arithmetic), so the mapping is a reshape::

    params = table_to_params(grid.embeddings)        # [rows * level_dim]
    table = params_to_table(params, grid.level_dim)  # [rows, level_dim]

:func:`layout` recomputes the offsets with tiny-cuda-nn's rules and :func:`grid_index` ports its
vertex indexing literally, so the CPU tests check both against the torch backend without a GPU.

Differences that the backends' comparison tolerates: tiny-cuda-nn computes in its preferred
precision (fp16 on most GPUs: features are rounded to fp16 and its gradients are accumulated with
a loss scale of 128), and it has no per-level mask, so ``level_mask`` is applied to its output
(masked levels then receive zero gradient, as in the torch backend).
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    from talker.encoders.hashgrid import HashGrid

INSTALL_HINT = (
    "pip install -e .[tcnn], i.e. pip install git+https://github.com/NVlabs/tiny-cuda-nn/#subdirectory=bindings/torch"
)


@functools.cache
def _import() -> Any | None:
    try:  # tinycudann raises EnvironmentError (not ImportError) on a machine without CUDA
        import tinycudann

        return tinycudann
    except Exception:  # noqa: BLE001 - any failure means "not usable here"
        return None


def available() -> bool:
    """Is tiny-cuda-nn importable (which also needs a CUDA device)?"""
    return _import() is not None


def supports(grid: HashGrid) -> bool:
    """Can tiny-cuda-nn express this grid? (hash type, 1/2/4/8 features per level, <= 32 levels)."""
    return grid.gridtype == "hash" and grid.level_dim in (1, 2, 4, 8) and grid.num_levels <= 32


def check_supported(grid: HashGrid) -> None:
    """Raise a one-line error if ``backend='tcnn'`` cannot serve this grid here."""
    if not supports(grid):
        raise ValueError(
            f"HashGrid backend 'tcnn' supports gridtype='hash' with level_dim in (1, 2, 4, 8) and at most 32 "
            f"levels, got gridtype={grid.gridtype!r}, level_dim={grid.level_dim}, num_levels={grid.num_levels}"
        )
    if not available():
        raise ImportError(f"HashGrid backend 'tcnn' needs tiny-cuda-nn and a CUDA device ({INSTALL_HINT})")


def encoding_config(grid: HashGrid) -> dict[str, Any]:
    """tiny-cuda-nn's encoding config for ``grid``."""
    return {
        "otype": "Grid",
        "type": "Hash",
        "n_levels": grid.num_levels,
        "n_features_per_level": grid.level_dim,
        "log2_hashmap_size": grid.log2_hashmap_size,
        "base_resolution": grid.base_resolution,
        "per_level_scale": grid.per_level_scale,
        "interpolation": "Linear",
    }


def layout(input_dim: int, num_levels: int, base_resolution: int, per_level_scale: float, log2_hashmap_size: int) -> tuple[list[int], list[int]]:
    """Row offsets and sizes of each level, by tiny-cuda-nn's rules (``GridEncodingTemplated``).

    ``scale = exp2f(l * log2(per_level_scale)) * base_resolution - 1`` in float32,
    ``resolution = ceil(scale) + 1``, ``size = min(next_multiple(resolution**D, 8), 2**log2)``.
    """
    offsets, sizes, offset = [], [], 0
    log2_scale = np.log2(np.float32(per_level_scale))
    for level in range(num_levels):
        scale = np.exp2(np.float32(level) * log2_scale) * np.float32(base_resolution) - np.float32(1.0)
        resolution = int(np.ceil(scale)) + 1
        size = min(int(math.ceil(resolution**input_dim / 8)) * 8, 1 << log2_hashmap_size)
        offsets.append(offset)
        sizes.append(size)
        offset += size
    return offsets, sizes


def grid_index(pos_grid: np.ndarray, resolution: int, hashmap_size: int) -> np.ndarray:
    """tiny-cuda-nn's ``grid_index`` for hash grids, a literal port in uint32 arithmetic.

    Args:
        pos_grid: ``[N, D]`` non-negative lattice coordinates.
        resolution: the level's vertices per axis; ``hashmap_size``: its number of rows.
    Returns:
        ``[N]`` row within the level.
    """
    primes = np.array([1, 2654435761, 805459861, 3674653429], dtype=np.uint64)
    pos = pos_grid.astype(np.uint64)
    stride, index = 1, np.zeros(pos.shape[0], dtype=np.uint64)
    for dim in range(pos.shape[1]):
        if stride > hashmap_size:
            break
        index = (index + pos[:, dim] * np.uint64(stride)) & np.uint64(0xFFFFFFFF)
        stride *= resolution
    if hashmap_size < stride:
        index = np.zeros_like(index)
        for dim in range(pos.shape[1]):
            index ^= (pos[:, dim] * primes[dim]) & np.uint64(0xFFFFFFFF)
    return (index % np.uint64(hashmap_size)).astype(np.int64)


def table_to_params(table: Tensor) -> Tensor:
    """``[rows, level_dim]`` -> tiny-cuda-nn's flat ``[rows * level_dim]`` (a view)."""
    return table.reshape(-1)


def params_to_table(params: Tensor, level_dim: int) -> Tensor:
    """tiny-cuda-nn's flat params -> ``[rows, level_dim]`` (a view)."""
    return params.reshape(-1, level_dim)


def encode(grid: HashGrid, x01: Tensor) -> Tensor:
    """``[N, D]`` CUDA points in ``[0, 1]`` -> ``[N, L * C]`` fp32, reading ``grid.embeddings``."""
    tcnn = _import()
    if tcnn is None:
        raise ImportError(f"HashGrid backend 'tcnn' needs tiny-cuda-nn ({INSTALL_HINT})")
    if grid._tcnn is None:
        encoding = tcnn.Encoding(grid.input_dim, encoding_config(grid))
        if encoding.params.numel() != grid.embeddings.numel():
            raise RuntimeError(
                f"tiny-cuda-nn allocates {encoding.params.numel()} grid parameters, HashGrid has "
                f"{grid.embeddings.numel()}: the layouts disagree for {grid.extra_repr()}"
            )
        grid._tcnn = encoding  # plain attribute: its own params are never used or trained
    encoding = grid._tcnn
    from tinycudann.modules import _C, _module_function  # the autograd bridge tcnn's Module uses

    n = x01.shape[0]
    granularity = int(_C.batch_size_granularity())
    padded = (n + granularity - 1) // granularity * granularity
    x = torch.nn.functional.pad(x01.float(), [0, 0, 0, padded - n]).contiguous()
    params = table_to_params(grid.embeddings).to(encoding.params.dtype).contiguous()
    out = _module_function.apply(encoding.native_tcnn_module, x, params, encoding.loss_scale)
    out = out[:n, : grid.output_dim].float()
    return out * grid.level_mask.repeat_interleave(grid.level_dim).to(out.dtype)
