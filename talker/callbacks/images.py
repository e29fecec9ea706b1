"""TensorBoard image panels of the periodic validation renders."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger


def panel(pred: torch.Tensor, target: torch.Tensor, depth: torch.Tensor, opacity: torch.Tensor) -> torch.Tensor:
    """``render | ground truth | 4x abs error | depth | opacity`` as one ``[H, 5W, 3]`` image."""
    error = ((pred - target).abs() * 4).clamp(0, 1)
    hit = opacity > 0.5
    d = depth.clone()
    if hit.any():
        lo, hi = d[hit].min(), d[hit].max()
        d = torch.where(hit, 1 - (d - lo) / (hi - lo + 1e-8), torch.zeros_like(d))
    gray = lambda x: x.unsqueeze(-1).expand(*x.shape, 3)  # noqa: E731
    return torch.cat([pred, target, error, gray(d), gray(opacity)], dim=1).clamp(0, 1)


class ImageLogger(L.Callback):
    """Logs a panel per validation frame to TensorBoard (rank zero only)."""

    def on_validation_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking or outputs is None:
            return
        image = panel(outputs["pred"], batch["image"], outputs["depth"], outputs["opacity"]).cpu()
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(f"val/frame_{batch_idx}", image, trainer.global_step, dataformats="HWC")
