"""Per-step reseeding, so that a resumed run continues exactly as an uninterrupted one would."""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch


class StepSeed(L.Callback):
    """Seeds torch, numpy and random from ``(seed, global_step)`` before every training step.

    Checkpoints do not carry RNG states, so without this, stratified jitter and occupancy probes
    after a resume would differ from an uninterrupted run. (Ray batches are seeded by the loader.)
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        step_seed = (self.seed * 1_000_003 + trainer.global_step) % (2**31)
        torch.manual_seed(step_seed)
        np.random.seed(step_seed)
        random.seed(step_seed)
