"""Exponential moving average of the weights (RAD-NeRF / torch-ngp: decay 0.95 per step), on Lightning's
:class:`~lightning.pytorch.callbacks.EMAWeightAveraging`.

Only parameters are averaged. Buffers are state, not weights (the occupancy grid, the progressive
level mask, step counters): averaging them would blur a 0/1 mask and fail on integer ones, and
leaving them out of the average would leave the copy's buffers as they were at fit start. So the
average's buffers are copied from the live model whenever the average is used: for validation, in
a checkpoint, and at the end of fit (where the live model takes the averaged weights, so that the
evaluation and every saved checkpoint's ``state_dict`` hold them). A checkpoint saved after fit still
keeps the live weights in ``current_model_state``, so a resumed run continues exactly.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import EMAWeightAveraging


class ParameterEMA(EMAWeightAveraging):
    """EMA of the parameters; the buffers follow the live model.

    Args:
        decay: weight of the average per step (RAD-NeRF's ``ema_decay``: 0.95, a memory of ~20 steps).
        start_step: first step that updates the average (before it, the average is the live model).
    """

    def __init__(self, decay: float = 0.95, start_step: int = 0) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"callbacks.ema.decay must lie in [0, 1), got {decay}")
        super().__init__(use_buffers=False, decay=decay, update_starting_at_step=start_step)
        self._live_at_end: dict[str, torch.Tensor] | None = None

    @torch.no_grad()
    def _sync_buffers(self, module: L.LightningModule) -> None:
        if self._average_model is not None:
            for average, live in zip(self._average_model.module.buffers(), module.buffers(), strict=True):
                average.copy_(live)

    def on_validation_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._sync_buffers(module)
        super().on_validation_epoch_start(trainer, module)

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        # Lightning overwrites the live weights with the average here; keep them for a later checkpoint.
        self._live_at_end = {k: v.detach().clone() for k, v in module.state_dict().items()}
        self._sync_buffers(module)
        super().on_train_end(trainer, module)

    def on_save_checkpoint(self, trainer: L.Trainer, module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        self._sync_buffers(module)
        super().on_save_checkpoint(trainer, module, checkpoint)
        if self._live_at_end is not None and "current_model_state" in checkpoint:
            checkpoint["current_model_state"] = self._live_at_end
