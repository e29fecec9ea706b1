"""ER-NeRF's adaptive pose encoding of the torso field (Sec. 3.4)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from talker.encoders.frequency import FrequencyEncoding
from talker.fields.torso import PoseEncoding

# ER-NeRF's initial anchors, in head coordinates (roughly the face's centre and two points on it).
ANCHORS = ((0.01, 0.01, 0.1), (-0.1, -0.1, 0.1), (0.1, -0.1, 0.1))


class AnchorPoseEncoding(PoseEncoding):
    """Learnable 3D anchor points on the head, seen from the camera: ``[4, 4]`` c2w -> ``[K * 2]`` encoded.

    Each anchor is moved into the camera's frame (inverse camera-to-world) and projected
    (``x / z, y / z``); the ``2K`` numbers are frequency-encoded. Unlike Euler angles this says where
    the head sits in the image, which is what the torso's image-space deformation has to follow.
    ER-NeRF learns the anchors in homogeneous coordinates with a penalty keeping ``w`` at 1; here
    ``w`` is fixed at 1.

    Args:
        anchors: initial anchor points ``[K, 3]`` (ER-NeRF's three).
        frequencies: frequency encoding of the projected points (ER-NeRF: 3).
    """

    def __init__(self, anchors: Sequence[Sequence[float]] = ANCHORS, frequencies: int = 3) -> None:
        super().__init__()
        self.anchors = nn.Parameter(torch.tensor(anchors, dtype=torch.float32))
        self.encoder = FrequencyEncoding(2 * self.anchors.shape[0], frequencies)
        self.output_dim = self.encoder.output_dim

    def project(self, c2w: Tensor) -> Tensor:
        """``[4, 4] -> [K * 2]``: the anchors' image-plane coordinates (before encoding)."""
        w2c = torch.linalg.inv(c2w.float())
        camera = self.anchors @ w2c[:3, :3].T + w2c[:3, 3]
        return (camera[:, :2] / camera[:, 2:3]).reshape(-1)

    def forward(self, c2w: Tensor) -> Tensor:
        return self.encoder(self.project(c2w))
