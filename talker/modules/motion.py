"""The motion stage: a LightningModule that trains an audio -> landmark generator (and its sync expert)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor
from torch.func import functional_call

from talker.config import ConfigError
from talker.motion.generator import MotionGenerator
from talker.motion.metrics import landmark_errors
from talker.motion.processing import gaussian_smooth
from talker.motion.sync import SyncExpert, mouth_of, pair_starts, windows_at


class MotionModule(L.LightningModule):
    """Audio rows -> canonical landmarks, trained on a dataset's (audio, landmark) sequences.

    Landmarks and audio rows are normalised with the training split's per-channel mean and std,
    kept as buffers so that a checkpoint alone turns new audio into landmarks (``talker.drive``).

    Args:
        generator: factory ``(audio_dim=...) -> MotionGenerator`` (variational or regression).
        audio_dim: width of the per-frame audio rows (2 x the extractor's: mel 160, HuBERT 2048).
        sync_expert: factory ``(audio_dim=...) -> SyncExpert``, trained alongside on real pairs; None: no expert.
        sync_weight: weight of the expert's ``-log p(sync)`` on the generator's output (0: off).
        sync_start: step from which the sync loss applies (the expert must first learn).
        sync_pairs: synced and shifted windows per sequence and step.
        lr, weight_decay: AdamW.
        smoothing_sigma: Gaussian smoothing of generated sequences, in frames (0: none).
        temperature: noise scale when sampling a variational generator.
    """

    def __init__(
        self,
        generator: Callable[..., MotionGenerator],
        audio_dim: int,
        sync_expert: Callable[..., SyncExpert] | None = None,
        sync_weight: float = 0.05,
        sync_start: int = 500,
        sync_pairs: int = 8,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        smoothing_sigma: float = 1.0,
        temperature: float = 1.0,
    ) -> None:
        super().__init__()
        self.audio_dim = audio_dim
        self.generator = generator(audio_dim=audio_dim)
        self.sync_expert = sync_expert(audio_dim=audio_dim) if sync_expert is not None else None
        self.sync_weight, self.sync_start, self.sync_pairs = sync_weight, sync_start, sync_pairs
        self.lr, self.weight_decay = lr, weight_decay
        self.smoothing_sigma, self.temperature = smoothing_sigma, temperature
        dim = self.generator.landmark_dim
        self.register_buffer("landmark_mean", torch.zeros(dim))
        self.register_buffer("landmark_std", torch.ones(dim))
        self.register_buffer("audio_mean", torch.zeros(audio_dim))
        self.register_buffer("audio_std", torch.ones(audio_dim))
        self.register_buffer("stats_ready", torch.tensor(False))

    # -- normalisation -------------------------------------------------------------------------

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is None:
            return
        if datamodule.audio_dim != self.audio_dim:
            raise ConfigError(
                f"model.audio_dim={self.audio_dim}, but {datamodule.features.file_name} gives {datamodule.audio_dim}-wide "
                f"frame rows (set model.audio_dim={datamodule.audio_dim})"
            )
        if not bool(self.stats_ready):
            self.fit_statistics(datamodule.train_sequences())

    @torch.no_grad()
    def fit_statistics(self, sequences: list[tuple[Tensor, Tensor]]) -> None:
        """Per-channel mean and std of the training landmarks and audio rows (std floored at 1% of its median,
        so that nearly static coordinates do not dominate the loss)."""
        landmarks = torch.cat([lm.flatten(1) for lm, _ in sequences])
        audio = torch.cat([a for _, a in sequences])
        for data, mean, std in ((landmarks, self.landmark_mean, self.landmark_std), (audio, self.audio_mean, self.audio_std)):
            s = data.std(0)
            mean.copy_(data.mean(0))
            std.copy_(s.clamp(min=max(1e-8, 0.01 * s.median().item())))
        self.stats_ready.fill_(True)
        rank_zero_info(f"[talker] motion statistics from {landmarks.shape[0]} training frames")

    def normalize_landmarks(self, landmarks: Tensor) -> Tensor:
        """``[..., 68, 3]`` -> ``[..., 204]`` normalised."""
        return (landmarks.flatten(-2) - self.landmark_mean) / self.landmark_std

    def denormalize_landmarks(self, x: Tensor) -> Tensor:
        return (x * self.landmark_std + self.landmark_mean).unflatten(-1, (-1, 3))

    def normalize_audio(self, audio: Tensor) -> Tensor:
        return (audio - self.audio_mean) / self.audio_std

    # -- inference -----------------------------------------------------------------------------

    @torch.no_grad()
    def predict_landmarks(
        self, audio: Tensor, temperature: float | None = None, smoothing_sigma: float | None = None, seed: int = 0
    ) -> Tensor:
        """Per-frame audio rows ``[T, A]`` -> landmarks ``[T, 68, 3]`` in the dataset's units."""
        generator = torch.Generator().manual_seed(seed)
        temperature = self.temperature if temperature is None else temperature
        a = self.normalize_audio(audio.to(self.device, torch.float32))[None]
        x = self.generator.generate(a, temperature=temperature, generator=generator)[0]
        landmarks = self.denormalize_landmarks(x)
        sigma = self.smoothing_sigma if smoothing_sigma is None else smoothing_sigma
        return gaussian_smooth(landmarks, sigma)

    # -- training ------------------------------------------------------------------------------

    def training_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> Tensor:
        x = self.normalize_landmarks(batch["landmarks"])
        a = self.normalize_audio(batch["audio"])
        mask = batch["mask"]
        loss, parts, pred = self.generator.loss(x, a, mask)
        for name, value in parts.items():
            self.log(f"train/{name}", value)
        if self.sync_expert is not None:
            loss = loss + self._sync_losses(x, a, pred)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def _sync_losses(self, x: Tensor, a: Tensor, pred: Tensor) -> Tensor:
        expert, window = self.sync_expert, self.sync_expert.window
        starts, shifted = pair_starts(x.shape[1], x.shape[0], self.sync_pairs, window)
        starts, shifted = starts.to(x.device), shifted.to(x.device)
        mouth = windows_at(mouth_of(x), starts, window)
        audio_synced = windows_at(a, starts, window)
        p_real = expert(torch.cat([mouth, mouth]), torch.cat([audio_synced, windows_at(a, shifted, window)]))
        labels = torch.cat([torch.ones(mouth.shape[0]), torch.zeros(mouth.shape[0])]).to(x)
        expert_loss = torch.nn.functional.binary_cross_entropy(p_real, labels)
        self.log("train/sync_expert_bce", expert_loss)
        self.log("train/sync_expert_acc", ((p_real > 0.5).float() == labels).float().mean())
        if self.sync_weight <= 0 or self.global_step < self.sync_start:
            return expert_loss
        # The expert judges the generator with its weights detached: the sync loss trains the generator only.
        frozen = {name: p.detach() for name, p in expert.named_parameters()}
        p_fake = functional_call(expert, frozen, (windows_at(mouth_of(pred), starts, window), audio_synced))
        sync_loss = -torch.log(p_fake).mean()
        self.log("train/sync_loss", sync_loss)
        return expert_loss + self.sync_weight * sync_loss

    def validation_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> None:
        target = batch["landmarks"][0]
        pred = self.predict_landmarks(batch["audio"][0])
        for name, value in landmark_errors(pred, target).items():
            self.log(f"val/{name}", value, batch_size=1)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)

