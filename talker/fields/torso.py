"""RAD-NeRF's 2D torso field (Tang et al. 2022, Sec. 3.3), trained after the head, composited under it.

The torso barely changes shape, so it is modelled in image space: a pixel coordinate, deformed by a
small MLP that sees the head pose, looks up a 2D hash grid whose features give the torso's alpha
and colour at that pixel. The torso is composited over the clean background and the head is
volume-rendered over the result (R2-Talker, RAD-NeRF, ER-NeRF):

    background' = alpha * torso_rgb + (1 - alpha) * background
    image       = sum_i w_i c_i + (1 - opacity_head) * background'

Example:
    >>> from talker.encoders import HashGrid
    >>> torso = TorsoField(HashGrid(2, 4, 2, 8, 10, 64), hidden_dim=8, deform_hidden=8)
    >>> coords = pixel_coords(torch.tensor([[0, 0], [63, 63]]), width=64, height=64)
    >>> out = torso(coords, torch.eye(4))
    >>> out.alpha.shape, out.rgb.shape, out.offset.shape
    (torch.Size([2]), torch.Size([2, 3]), torch.Size([2, 2]))
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from talker.encoders.frequency import FrequencyEncoding
from talker.encoders.hashgrid import HashGrid
from talker.fields.inputs import Frame, FrameInput
from talker.nn.mlp import MLP


@dataclass
class TorsoOutput:
    """Per-pixel ``alpha [N]`` in ``[0, 1]``, ``rgb [N, 3]`` in ``[0, 1]`` and the deformation ``offset [N, 2]``."""

    alpha: Tensor
    rgb: Tensor
    offset: Tensor


def pixel_coords(pixels: Tensor, width: int, height: int) -> Tensor:
    """``[N, 2]`` integer pixels ``(x, y)`` -> ``[N, 2]`` in ``[-1, 1]`` (image corners at +-1, as RAD-NeRF)."""
    scale = torch.tensor([2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)], device=pixels.device)
    return pixels.float() * scale - 1.0


def pose_vector(c2w: Tensor) -> Tensor:
    """``[4, 4]`` camera-to-world -> ``[6]``: XYZ Euler angles of the rotation, then the translation
    (RAD-NeRF's ``convert_poses``; the angles of ``R = Rx(a) @ Ry(b) @ Rz(c)``)."""
    r = c2w[:3, :3].float()
    b = torch.asin(r[0, 2].clamp(-1.0, 1.0))
    a = torch.atan2(-r[1, 2], r[2, 2])
    c = torch.atan2(-r[0, 1], r[0, 0])
    return torch.cat([torch.stack([a, b, c]), c2w[:3, 3].float()])


class PoseEncoding(nn.Module, ABC):
    """How the torso field sees the head pose: ``[4, 4]`` camera-to-world -> ``[output_dim]``."""

    output_dim: int

    @abstractmethod
    def forward(self, c2w: Tensor) -> Tensor: ...


class EulerPoseEncoding(PoseEncoding):
    """RAD-NeRF: the pose's 6-D vector (:func:`pose_vector`) under a frequency encoding."""

    def __init__(self, frequencies: int = 4) -> None:
        super().__init__()
        self.encoder = FrequencyEncoding(6, frequencies)
        self.output_dim = self.encoder.output_dim

    def forward(self, c2w: Tensor) -> Tensor:
        return self.encoder(pose_vector(c2w))


class TorsoField(nn.Module):
    """``(pixel coords [N, 2], head pose, frame) -> TorsoOutput`` (RAD-NeRF's ``forward_torso``).

    ``x' = clamp(shrink * x + deform([enc(shrink * x), enc(pose), code]), -1, 1)``, then
    ``[alpha, rgb] = sigmoid(net([grid(x'), enc(shrink * x), enc(pose), code]))``; ``enc(pose)`` is
    the injected :class:`PoseEncoding` (RAD-NeRF's Euler angles; ER-NeRF's projected anchor points,
    ``talker.baselines.er_nerf.AnchorPoseEncoding``).

    Args:
        grid: the 2D hash grid of torso features over ``[-1, 1]^2`` (RAD-NeRF: tiled, 16 levels,
            level dim 2, base 16, 2^16 rows, desired 2048).
        coord_frequencies: frequency encoding of the pixel coordinate (RAD-NeRF: 10, ER-NeRF: 8).
        pose_frequencies: frequencies of the default pose encoding (``EulerPoseEncoding``: 4).
        pose_encoding: how the head pose enters; None: ``EulerPoseEncoding(pose_frequencies)``.
        deform_hidden, deform_layers: the deformation MLP (64, 3).
        hidden_dim, num_layers: the alpha/colour MLP (32, 3).
        shrink: pixel coordinates are scaled by this before deforming, leaving the deformation
            room at the borders (RAD-NeRF: 0.8).
        code: optional per-frame input (RAD-NeRF: an ``IndividualCode`` of dim 8).
    """

    def __init__(
        self,
        grid: HashGrid,
        coord_frequencies: int = 10,
        pose_frequencies: int = 4,
        deform_hidden: int = 64,
        deform_layers: int = 3,
        hidden_dim: int = 32,
        num_layers: int = 3,
        shrink: float = 0.8,
        code: FrameInput | None = None,
        pose_encoding: PoseEncoding | None = None,
    ) -> None:
        super().__init__()
        if grid.input_dim != 2:
            raise ValueError(f"TorsoField needs a 2D grid, got input_dim={grid.input_dim}")
        self.grid = grid
        self.coord_encoder = FrequencyEncoding(2, coord_frequencies)
        self.pose_encoding = pose_encoding if pose_encoding is not None else EulerPoseEncoding(pose_frequencies)
        self.code = code
        context = self.coord_encoder.output_dim + self.pose_encoding.output_dim + (code.dim if code is not None else 0)
        self.deform_net = MLP(context, 2, deform_hidden, deform_layers, bias=False)
        self.net = MLP(grid.output_dim + context, 4, hidden_dim, num_layers, bias=False)
        self.shrink = shrink
        self.frame_keys = tuple(code.keys) if code is not None else ()

    def forward(self, coords: Tensor, pose: Tensor, frame: Frame | None = None) -> TorsoOutput:
        """``coords [N, 2]`` in ``[-1, 1]``; ``pose``: ``[4, 4]`` camera-to-world of the head."""
        x = coords.float() * self.shrink
        parts = [self.coord_encoder(x), self.pose_encoding(pose.float().to(x.device)).expand(x.shape[0], -1)]
        if self.code is not None:
            parts.append(self.code(frame).to(x.device).expand(x.shape[0], -1))
        context = torch.cat(parts, dim=-1)
        offset = self.deform_net(context)
        warped = (x + offset).clamp(-1.0, 1.0)
        h = self.net(torch.cat([self.grid(warped), context], dim=-1))
        return TorsoOutput(alpha=torch.sigmoid(h[:, 0].float()), rgb=torch.sigmoid(h[:, 1:].float()), offset=offset)


def composite_torso(torso: TorsoOutput, background: Tensor) -> Tensor:
    """The torso over the clean background, ``[N, 3]``: the background the head is rendered over."""
    alpha = torso.alpha.unsqueeze(-1)
    return alpha * torso.rgb + (1.0 - alpha) * background


def euler_xyz_to_matrix(angles: Tensor) -> Tensor:
    """``[3]`` XYZ Euler angles -> ``[3, 3]`` ``Rx @ Ry @ Rz`` (the inverse of :func:`pose_vector`'s angles)."""
    a, b, c = angles.tolist()
    rx = torch.tensor([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = torch.tensor([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = torch.tensor([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return rx @ ry @ rz
