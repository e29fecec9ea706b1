"""TensorBoard image panels of the periodic validation renders."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from talker.data.landmarks import MOUTH

LANDMARK_COLOUR = (0.0, 1.0, 0.0)  # face outline, brows, eyes, nose
MOUTH_COLOUR = (1.0, 0.0, 1.0)  # points 48-67


def draw_landmarks(image: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
    """A copy of ``image [H, W, 3]`` with each of the 68 ``(x, y)`` landmarks set to a one-pixel dot."""
    out = image.clone()
    h, w = out.shape[:2]
    xy = landmarks.round().long()
    colours = torch.tensor([LANDMARK_COLOUR] * len(xy), dtype=out.dtype, device=out.device)
    colours[MOUTH] = torch.tensor(MOUTH_COLOUR, dtype=out.dtype, device=out.device)
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
    out[xy[inside, 1], xy[inside, 0]] = colours[inside]
    return out


def panel(
    pred: torch.Tensor, target: torch.Tensor, depth: torch.Tensor, opacity: torch.Tensor, landmarks: torch.Tensor | None = None
) -> torch.Tensor:
    """``render | ground truth | 4x abs error | depth | opacity`` as one ``[H, 5W, 3]`` image.

    With ``landmarks [68, 2]`` the ground-truth tile shows them (mouth points in magenta), so a
    misplaced mouth in the render is easy to spot against it.
    """
    error = ((pred - target).abs() * 4).clamp(0, 1)
    hit = opacity > 0.5
    d = depth.clone()
    if hit.any():
        lo, hi = d[hit].min(), d[hit].max()
        d = torch.where(hit, 1 - (d - lo) / (hi - lo + 1e-8), torch.zeros_like(d))
    gray = lambda x: x.unsqueeze(-1).expand(*x.shape, 3)  # noqa: E731
    shown_target = draw_landmarks(target, landmarks) if landmarks is not None else target
    return torch.cat([pred, shown_target, error, gray(d), gray(opacity)], dim=1).clamp(0, 1)


class ImageLogger(L.Callback):
    """Logs a panel per validation frame to TensorBoard (rank zero only)."""

    def on_validation_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking or outputs is None:
            return
        image = panel(outputs["pred"], batch["image"], outputs["depth"], outputs["opacity"], batch.get("lms")).cpu()
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(f"val/frame_{batch_idx}", image, trainer.global_step, dataformats="HWC")
