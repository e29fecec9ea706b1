"""Landmark sequence post-processing: Gaussian temporal smoothing and dataset normalisation."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from talker.audio import FrameWindows


def gaussian_kernel(sigma: float) -> Tensor:
    radius = max(1, int(np.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def gaussian_smooth(sequence: Tensor, sigma: float) -> Tensor:
    """Smooth ``[T, ...]`` along time with a Gaussian of ``sigma`` frames (edges replicated); 0 is identity."""
    if sigma <= 0 or sequence.shape[0] < 2:
        return sequence
    kernel = gaussian_kernel(sigma).to(sequence)
    radius = kernel.shape[0] // 2
    flat = sequence.reshape(sequence.shape[0], -1).T[:, None]  # [C, 1, T]
    padded = torch.nn.functional.pad(flat, (radius, radius), mode="replicate")
    out = torch.nn.functional.conv1d(padded, kernel.view(1, 1, -1))
    return out[:, 0].T.reshape(sequence.shape)


def frame_rows(windows: np.ndarray | Tensor | FrameWindows) -> Tensor:
    """``[N, 16, C]`` per-frame windows -> ``[N, 2C]``: the two 50 Hz rows inside each 40 ms frame
    (window rows 8 and 9 are rows ``2i`` and ``2i + 1``; the generator sees the rest through its
    receptive field). A :class:`FrameWindows` track gives them without cutting its windows."""
    if isinstance(windows, FrameWindows):
        return windows.own_rows().flatten(1)
    windows = torch.as_tensor(np.asarray(windows), dtype=torch.float32)
    if windows.ndim != 3 or windows.shape[1] < 10:
        raise ValueError(f"audio features must be [N, 16, C] windows, got shape {tuple(windows.shape)}")
    centre = windows.shape[1] // 2
    return windows[:, centre : centre + 2].flatten(1)
