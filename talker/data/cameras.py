"""Camera conventions of the AD-NeRF / RAD-NeRF dataset layout, and ray generation.

``transform_matrix`` in transforms_*.json is a camera-to-world matrix in the NeRF (OpenGL)
convention: camera looks down -z, y up. The reference codebases convert it with instant-NGP's
``nerf_matrix_to_ngp`` (cyclic axis permutation, y/z columns flipped, translation scaled by
``scale`` and shifted by ``offset``) into the "ngp" frame where the camera looks down +z with y
down, as OpenCV does. talker trains in the ngp frame; these functions convert both ways.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor


def nerf_to_ngp(pose: np.ndarray, scale: float = 4.0, offset: Sequence[float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """``[4, 4]`` NeRF camera-to-world -> ngp camera-to-world (instant-NGP's nerf_matrix_to_ngp)."""
    p = np.asarray(pose, dtype=np.float64)
    return np.array(
        [
            [p[1, 0], -p[1, 1], -p[1, 2], p[1, 3] * scale + offset[0]],
            [p[2, 0], -p[2, 1], -p[2, 2], p[2, 3] * scale + offset[1]],
            [p[0, 0], -p[0, 1], -p[0, 2], p[0, 3] * scale + offset[2]],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )


def ngp_to_nerf(pose: np.ndarray, scale: float = 4.0, offset: Sequence[float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """Inverse of :func:`nerf_to_ngp`."""
    m = np.asarray(pose, dtype=np.float64)
    return np.array(
        [
            [m[2, 0], -m[2, 1], -m[2, 2], (m[2, 3] - offset[2]) / scale],
            [m[0, 0], -m[0, 1], -m[0, 2], (m[0, 3] - offset[0]) / scale],
            [m[1, 0], -m[1, 1], -m[1, 2], (m[1, 3] - offset[1]) / scale],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )


def pixel_rays(c2w: Tensor, intrinsics: Tensor, pixels: Tensor) -> tuple[Tensor, Tensor]:
    """Rays through pixel centres in the ngp (OpenCV-like) camera frame.

    Args:
        c2w: ``[4, 4]`` ngp camera-to-world.
        intrinsics: ``[4]`` = ``fx, fy, cx, cy`` in pixels.
        pixels: ``[R, 2]`` integer ``(x, y)`` = (column, row).
    Returns:
        ``rays_o [R, 3]``, ``rays_d [R, 3]`` (unit length).
    """
    fx, fy, cx, cy = intrinsics.unbind()
    xy = pixels.to(c2w.dtype) + 0.5
    dirs = torch.stack([(xy[:, 0] - cx) / fx, (xy[:, 1] - cy) / fy, torch.ones_like(xy[:, 0])], dim=-1)
    rays_d = dirs @ c2w[:3, :3].T
    rays_d = rays_d / rays_d.norm(dim=-1, keepdim=True)
    return c2w[:3, 3].expand_as(rays_d), rays_d


def project(points: Tensor, c2w: Tensor, intrinsics: Tensor) -> Tensor:
    """``[N, 3]`` world (ngp frame) points -> ``[N, 2]`` pixel coordinates ``(x, y)``."""
    w2c_r = c2w[:3, :3].T
    cam = (points - c2w[:3, 3]) @ w2c_r.T
    fx, fy, cx, cy = intrinsics.unbind()
    return torch.stack([fx * cam[:, 0] / cam[:, 2] + cx, fy * cam[:, 1] / cam[:, 2] + cy], dim=-1)
