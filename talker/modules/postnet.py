"""Post-net stage: adapt a trained motion generator's output to the target person (GeneFace Sec. 3.2).

The motion stage (``model.motion_run``) is loaded frozen; its generator turns the target dataset's
audio into landmarks, the post-net refines them, and a frame discriminator (LSGAN) pulls the refined
frames toward the target person's landmark distribution. The motion stage's sync expert keeps the
lips in time, and an L1 term keeps the refinement close to the generator's output.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import lightning as L
import torch
from torch import Tensor
from torch.func import functional_call

from talker.config import ConfigError
from talker.motion.metrics import landmark_errors
from talker.motion.postnet import FrameDiscriminator, PostNet, lsgan_discriminator_loss, lsgan_generator_loss
from talker.motion.processing import gaussian_smooth
from talker.motion.sync import mouth_of, pair_starts, windows_at
from talker.modules.motion import MotionModule


def load_motion_run(run: str | Path) -> MotionModule:
    """The trained motion stage of a run folder (resolved config.yaml + checkpoints/last.ckpt)."""
    from talker.runs import RunFolder

    folder = RunFolder(run)
    for path in (folder.config_file, folder.checkpoint_file):
        if not path.is_file():
            raise ConfigError(
                f"{path}: missing; model.motion_run must be a trained motion run (python -m talker.fit experiment=motion)"
            )
    if folder.model_target() != "talker.modules.motion.MotionModule":
        raise ConfigError(f"model.motion_run={run}: not a motion run")
    return folder.load_module().train()


class PostNetModule(L.LightningModule):
    """Args:
    motion_run: folder of the trained motion stage (frozen here; its weights are stored in this checkpoint).
    postnet, discriminator: factories ``(audio_dim=...)`` / ``()``.
    adversarial_weight, sync_weight, identity_weight: weights of the LSGAN, sync and L1 terms.
    lr: Adam for both players.
    """

    def __init__(
        self,
        motion_run: str,
        postnet: Callable[..., PostNet],
        discriminator: Callable[..., FrameDiscriminator],
        adversarial_weight: float = 0.1,
        sync_weight: float = 0.05,
        identity_weight: float = 1.0,
        lr: float = 1e-4,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False  # two players, two optimizers
        self.motion = load_motion_run(motion_run).requires_grad_(False)
        self.postnet = postnet(audio_dim=self.motion.audio_dim)
        self.discriminator = discriminator()
        self.adversarial_weight, self.sync_weight = adversarial_weight, sync_weight
        self.identity_weight, self.lr = identity_weight, lr

    @property
    def audio_dim(self) -> int:
        return self.motion.audio_dim

    def train(self, mode: bool = True) -> PostNetModule:
        super().train(mode)
        self.motion.eval()  # frozen stage: no dropout, fixed statistics
        return self

    def _generate(self, a: Tensor, temperature: float | None = None, seed: int | None = None) -> Tensor:
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        t = self.motion.temperature if temperature is None else temperature
        with torch.no_grad():
            return self.motion.generator.generate(a, temperature=t, generator=generator)

    @torch.no_grad()
    def predict_landmarks(
        self, audio: Tensor, temperature: float | None = None, smoothing_sigma: float | None = None, seed: int = 0
    ) -> Tensor:
        """Per-frame audio rows ``[T, A]`` -> refined landmarks ``[T, 68, 3]`` (as :meth:`MotionModule.predict_landmarks`)."""
        a = self.motion.normalize_audio(audio.to(self.device, torch.float32))[None]
        refined = self.postnet(self._generate(a, temperature, seed), a)[0]
        sigma = self.motion.smoothing_sigma if smoothing_sigma is None else smoothing_sigma
        return gaussian_smooth(self.motion.denormalize_landmarks(refined), sigma)

    # the scoring callback reads these from the stage it scores
    def normalize_landmarks(self, landmarks: Tensor) -> Tensor:
        return self.motion.normalize_landmarks(landmarks)

    def denormalize_landmarks(self, x: Tensor) -> Tensor:
        return self.motion.denormalize_landmarks(x)

    def normalize_audio(self, audio: Tensor) -> Tensor:
        return self.motion.normalize_audio(audio)

    @property
    def landmark_mean(self) -> Tensor:
        return self.motion.landmark_mean

    @property
    def sync_expert(self):
        return self.motion.sync_expert

    def training_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> None:
        opt_post, opt_disc = self.optimizers()
        real = self.motion.normalize_landmarks(batch["landmarks"])
        a = self.motion.normalize_audio(batch["audio"])
        mask = batch["mask"]
        generated = self._generate(a)
        refined = self.postnet(generated, a, mask)

        # discriminator: target frames real, refined frames fake
        d_loss = lsgan_discriminator_loss(self.discriminator(real), self.discriminator(refined.detach()))
        opt_disc.zero_grad()
        self.manual_backward(d_loss)
        opt_disc.step()

        # post-net: fool the (frozen) discriminator, stay in sync, stay close to the generator
        frozen = {name: p.detach() for name, p in self.discriminator.named_parameters()}
        adversarial = lsgan_generator_loss(functional_call(self.discriminator, frozen, (refined,)))
        identity = (refined - generated).abs().mean()
        loss = self.adversarial_weight * adversarial + self.identity_weight * identity
        expert = self.motion.sync_expert
        if expert is not None and self.sync_weight > 0:
            starts, _ = pair_starts(refined.shape[1], refined.shape[0], 8, expert.window)
            starts = starts.to(refined.device)
            p = expert(windows_at(mouth_of(refined), starts, expert.window), windows_at(a, starts, expert.window))
            sync = -torch.log(p).mean()
            loss = loss + self.sync_weight * sync
            self.log("train/sync_loss", sync)
        opt_post.zero_grad()
        self.manual_backward(loss)
        opt_post.step()
        self.log_dict({"train/d_loss": d_loss, "train/adversarial": adversarial, "train/identity": identity, "train/loss": loss})

    def validation_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> None:
        target = batch["landmarks"][0]
        for name, value in landmark_errors(self.predict_landmarks(batch["audio"][0]), target).items():
            self.log(f"val/{name}", value, batch_size=1)

    def configure_optimizers(self):
        return (
            torch.optim.Adam(self.postnet.parameters(), lr=self.lr, betas=(0.5, 0.999)),
            torch.optim.Adam(self.discriminator.parameters(), lr=self.lr, betas=(0.5, 0.999)),
        )
