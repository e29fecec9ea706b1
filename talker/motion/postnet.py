"""GeneFace's domain-adaptive post-net: refines a generator's landmarks toward the target person, judged
frame by frame by an MLP discriminator with least-squares GAN losses (LSGAN).

Shapes: ``landmarks [B, T, D]`` normalised (D = 68 * 3), ``audio [B, T, A]``, ``mask [B, T]``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from talker.motion.wavenet import WaveNet


class PostNet(nn.Module):
    """``x + residual(x, audio)``: a WaveNet over the landmarks conditioned on the audio; the output
    layer starts at zero, so an untrained post-net passes the generator's landmarks through."""

    def __init__(self, audio_dim: int, landmark_dim: int = 68 * 3, hidden: int = 64, dilations=(1, 2, 4)) -> None:
        super().__init__()
        self.inp = nn.Conv1d(landmark_dim, hidden, 1)
        self.audio = nn.Conv1d(audio_dim, hidden, 1)
        self.net = WaveNet(hidden, hidden, dilations=dilations)
        self.out = nn.Conv1d(hidden, landmark_dim, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, landmarks: Tensor, audio: Tensor, mask: Tensor | None = None) -> Tensor:
        m = (torch.ones(landmarks.shape[:2], device=landmarks.device) if mask is None else mask)[:, None]
        x = landmarks.transpose(1, 2)
        h = self.net(self.inp(x) * m, self.audio(audio.transpose(1, 2)) * m, m)
        return ((x + self.out(h)) * m).transpose(1, 2)


class FrameDiscriminator(nn.Module):
    """Scores single frames of landmarks: ~1 for the target person's, ~0 for generated ones (LSGAN)."""

    def __init__(self, landmark_dim: int = 68 * 3, hidden: int = 128, layers: int = 3) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        width = landmark_dim
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
            width = hidden
        self.net = nn.Sequential(*blocks, nn.Linear(width, 1))

    def forward(self, landmarks: Tensor) -> Tensor:
        """``[..., D]`` -> ``[...]`` scores."""
        return self.net(landmarks)[..., 0]


def lsgan_discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    return 0.5 * (((real - 1) ** 2).mean() + (fake**2).mean())


def lsgan_generator_loss(fake: Tensor) -> Tensor:
    return 0.5 * ((fake - 1) ** 2).mean()
