"""Audio -> landmark sequence generators: the variational one (GeneFace's VAE with a flow prior) and a
regression one for comparison. Both map whole sequences with dilated convolutions.

Shapes: ``landmarks [B, T, D]`` (normalised, D = 68 * 3), ``audio [B, T, A]`` (normalised per-frame
audio rows), ``mask [B, T]`` (1 for valid frames).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from talker.motion.flow import CouplingFlow, standard_normal_log_prob
from talker.motion.wavenet import WaveNet

DILATIONS = (1, 2, 4, 8)  # receptive field 31 frames (1.2 s); with the audio encoder 45


def masked_mse(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean squared error over valid frames ``mask [B, T]`` and every channel."""
    weights = mask[..., None].expand_as(pred)
    return ((pred - target) ** 2 * weights).sum() / weights.sum().clamp(min=1)


class AudioEncoder(nn.Module):
    """Per-frame audio rows -> ``[B, hidden, T]`` context features (a short WaveNet)."""

    def __init__(self, audio_dim: int, hidden: int, dilations: Sequence[int] = (1, 2, 4)) -> None:
        super().__init__()
        self.inp = nn.Conv1d(audio_dim, hidden, 1)
        self.net = WaveNet(hidden, 0, dilations=dilations)

    def forward(self, audio: Tensor, mask: Tensor) -> Tensor:
        m = mask[:, None]
        return self.net(self.inp(audio.transpose(1, 2)) * m, None, m)


class MotionGenerator(nn.Module, ABC):
    """Audio rows -> landmarks. Subclasses give the training loss and the generation rule."""

    def __init__(self, audio_dim: int, landmark_dim: int = 68 * 3) -> None:
        super().__init__()
        self.audio_dim, self.landmark_dim = audio_dim, landmark_dim

    @abstractmethod
    def loss(self, landmarks: Tensor, audio: Tensor, mask: Tensor) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """-> (loss, named parts to log, differentiable prediction ``[B, T, D]``)."""

    @abstractmethod
    def generate(
        self, audio: Tensor, mask: Tensor | None = None, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> Tensor:
        """``audio [B, T, A]`` -> landmarks ``[B, T, D]`` (normalised)."""


class RegressionMotion(MotionGenerator):
    """Deterministic baseline: audio features -> WaveNet -> landmarks, trained with L2."""

    def __init__(
        self, audio_dim: int, landmark_dim: int = 68 * 3, hidden: int = 128, dilations: Sequence[int] = DILATIONS
    ) -> None:
        super().__init__(audio_dim, landmark_dim)
        self.audio = AudioEncoder(audio_dim, hidden)
        self.decoder = WaveNet(hidden, hidden, dilations=dilations)
        self.inp = nn.Conv1d(hidden, hidden, 1)
        self.out = nn.Conv1d(hidden, landmark_dim, 1)

    def _decode(self, audio: Tensor, mask: Tensor) -> Tensor:
        a, m = self.audio(audio, mask), mask[:, None]
        return (self.out(self.decoder(self.inp(a), a, m)) * m).transpose(1, 2)

    def loss(self, landmarks: Tensor, audio: Tensor, mask: Tensor) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        pred = self._decode(audio, mask)
        recon = masked_mse(pred, landmarks, mask)
        return recon, {"recon": recon}, pred

    def generate(
        self, audio: Tensor, mask: Tensor | None = None, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> Tensor:
        mask = torch.ones(audio.shape[:2], device=audio.device) if mask is None else mask
        return self._decode(audio, mask)


class VariationalMotion(MotionGenerator):
    """GeneFace's variational motion generator: a posterior ``q(z | x, a)`` from a WaveNet encoder, a
    decoder ``p(x | z, a)``, and a prior ``p(z | a)`` that is a coupling flow of standard normal noise
    conditioned on the audio. Trained on the Monte-Carlo ELBO (one sample of ``z`` per frame):

        loss = MSE(x, decoder(z, a)) + kl_weight * (log q(z | x, a) - log p(z | a)) per latent element

    Generation draws ``eps ~ N(0, temperature^2)``, maps it through the flow to ``z`` and decodes.
    """

    def __init__(
        self,
        audio_dim: int,
        landmark_dim: int = 68 * 3,
        latent_dim: int = 16,
        hidden: int = 128,
        flow_layers: int = 4,
        flow_hidden: int = 64,
        kl_weight: float = 0.02,
        dilations: Sequence[int] = DILATIONS,
    ) -> None:
        super().__init__(audio_dim, landmark_dim)
        self.latent_dim, self.kl_weight = latent_dim, kl_weight
        self.audio = AudioEncoder(audio_dim, hidden)
        self.encoder_in = nn.Conv1d(landmark_dim, hidden, 1)
        self.encoder = WaveNet(hidden, hidden, dilations=dilations)
        self.posterior = nn.Conv1d(hidden, 2 * latent_dim, 1)
        self.prior = CouplingFlow(latent_dim, hidden, flow_hidden, flow_layers)
        self.decoder_in = nn.Conv1d(latent_dim, hidden, 1)
        self.decoder = WaveNet(hidden, hidden, dilations=dilations)
        self.out = nn.Conv1d(hidden, landmark_dim, 1)

    def decode(self, z: Tensor, a: Tensor, m: Tensor) -> Tensor:
        """``z [B, latent, T]``, audio context ``a [B, hidden, T]`` -> ``[B, T, D]``."""
        return (self.out(self.decoder(self.decoder_in(z) * m, a, m)) * m).transpose(1, 2)

    def loss(self, landmarks: Tensor, audio: Tensor, mask: Tensor) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        a, m = self.audio(audio, mask), mask[:, None]
        h = self.encoder(self.encoder_in(landmarks.transpose(1, 2)) * m, a, m)
        mean, log_std = self.posterior(h).chunk(2, dim=1)
        log_std = log_std.clamp(-7.0, 2.0)
        noise = torch.randn_like(mean)
        z = (mean + noise * log_std.exp()) * m
        log_q = ((standard_normal_log_prob(noise) - log_std) * m).sum(dim=(1, 2))
        log_p = self.prior.log_prob(z, a, m)
        kl = (log_q - log_p).sum() / (m.sum() * self.latent_dim).clamp(min=1)
        pred = self.decode(z, a, m)
        recon = masked_mse(pred, landmarks, mask)
        return recon + self.kl_weight * kl, {"recon": recon, "kl": kl}, pred

    def generate(
        self, audio: Tensor, mask: Tensor | None = None, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> Tensor:
        mask = torch.ones(audio.shape[:2], device=audio.device) if mask is None else mask
        a, m = self.audio(audio, mask), mask[:, None]
        shape = (audio.shape[0], self.latent_dim, audio.shape[1])
        eps = torch.randn(shape, generator=generator, device="cpu").to(audio.device) * temperature * m
        z, _ = self.prior(eps, a, m, reverse=True)
        return self.decode(z, a, m)
