"""GeneFace's landmark code (Ye et al. 2023): the landmark window as one global code.

Each frame's 68 x 3 landmarks are flattened to 204 numbers and encoded by GeneFace's landmark net
(a :class:`WindowNet` over a one-frame window, stride 1); the codes of the window's frames are
smoothed by attention into one code. Landmarks are normalised per coordinate by the training set's
mean and standard deviation first (GeneFace's ``idexp_lm3d_normalized``): raw canonical landmarks
move by a few thousandths between frames.

How the code enters the field is the fusion's choice: :class:`GloConcat` with ``ConcatFusion``
concatenates it to the field input (GLO, the form R2-Talker's M-AGLO section attributes to
GeneFace++); GeneFace's own instant-NGP head (``lm3d_radnerf``, which R2-Talker's GeneFace++ dagger
renders with) feeds it to RAD-NeRF's audio-spatial decomposition instead: :class:`LandmarkSpatial`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor

from talker.conditioning.audio_spatial import AmbientFusion
from talker.conditioning.base import ConditioningStrategy, Fusion
from talker.conditioning.temporal import AttentionSmoothing, WindowNet
from talker.encoders.hashgrid import HashGrid


class GloConcat(ConditioningStrategy):
    """``inputs["landmarks"] [window, num_landmarks, 3]`` -> ``h_cond [code_dim]``.

    Args:
        fusion: how the code enters the field (GeneFace: ``ConcatFusion`` without an MLP).
        window: frames per landmark window (``data.landmark_window``; GeneFace's smoothing window).
        num_landmarks: landmarks per frame.
        code_dim: width of the global code (GeneFace: 64).
    """

    inputs = ("landmarks",)

    def __init__(
        self, fusion: Fusion, window: int = 5, num_landmarks: int = 68, code_dim: int = 64, lr: float | None = None
    ) -> None:
        super().__init__(fusion, lr)
        self.window, self.num_landmarks, self.code_dim = window, num_landmarks, code_dim
        self.frame_net = WindowNet(num_landmarks * 3, code_dim, length=1, stride=1)
        self.smoothing = AttentionSmoothing(code_dim, window)
        dim = num_landmarks * 3
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.register_buffer("prepared", torch.tensor(False))

    @torch.no_grad()
    def prepare(self, conditions: Sequence[Mapping[str, Tensor]]) -> None:
        """Normalisation statistics of the training frames' landmarks (kept when resuming)."""
        if bool(self.prepared) or not conditions:
            return
        centre = torch.stack([c["landmarks"][self.window // 2] for c in conditions]).reshape(len(conditions), -1)
        self.mean.copy_(centre.mean(0))
        self.std.copy_(centre.std(0, unbiased=False).clamp_min(1e-4))
        self.prepared.fill_(True)

    @property
    def cond_dim(self) -> int:
        return self.code_dim

    def encode(self, inputs: Mapping[str, Tensor]) -> Tensor:
        landmarks = inputs["landmarks"]
        expected = (self.window, self.num_landmarks, 3)
        if tuple(landmarks.shape) != expected:
            raise ValueError(f"GloConcat expects landmarks of shape {expected}, got {tuple(landmarks.shape)}")
        frames = (landmarks.float().reshape(self.window, -1) - self.mean) / self.std
        frames = frames.reshape(self.window, 1, self.num_landmarks * 3)
        return self.smoothing(self.frame_net(frames))


class LandmarkSpatial(GloConcat):
    """GeneFace's ``lm3d_radnerf`` (the head of R2-Talker's GeneFace++ dagger): the landmark code moves
    each point to ambient coordinates looked up in ``grid``, RAD-NeRF's decomposition with landmarks
    in place of audio (GeneFace's ``RADNeRF`` with ``cond_type: idexp_lm3d_normalized``).

    Args:
        fusion: factory of the :class:`AmbientFusion` (a Hydra partial), given ``grid``.
        grid: the ambient grid (GeneFace: RAD-NeRF's, 2D tiled).
        window, num_landmarks, code_dim, lr: the landmark code (:class:`GloConcat`; GeneFace: a
            one-frame landmark net, attention smoothing over 5 frames, code 64, rate 5e-4).
    """

    def __init__(
        self, fusion: Callable[..., AmbientFusion], grid: HashGrid, window: int = 5, num_landmarks: int = 68,
        code_dim: int = 64, lr: float | None = None,
    ) -> None:
        super().__init__(fusion(grid=grid), window, num_landmarks, code_dim, lr)
