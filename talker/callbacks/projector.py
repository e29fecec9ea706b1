"""Conditioning features in TensorBoard's embedding projector (R2-Talker Fig. 8, the t-SNE of h_cond).

At the end of a fit, the strategy's conditional feature ``h_cond = strategy.encode(inputs)`` of every
training and held-out frame is written as one projector embedding, with metadata per frame: split,
img_id, mouth opening (inner-lip gap of the frame's canonical 3D landmarks) and its quintile, and
a mouth thumbnail. In TensorBoard, Projector tab: choose t-SNE and "Color by: opening_quintile".
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.utilities import rank_zero_info
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import TensorBoardLogger

from talker.data.frames import FrameConditions
from talker.data.landmarks import MOUTH, landmark_box, mouth_opening
from talker.data.layout import Split

QUINTILES = ("1 closed", "2", "3", "4", "5 open")


@torch.no_grad()
def conditioning_features(
    module: L.LightningModule, split: Split, conditions: FrameConditions, indices: list[int]
) -> torch.Tensor:
    """``[len(indices), cond_dim]`` conditional features of frames of ``split``."""
    rows = []
    for i in indices:
        cond = {k: v.to(module.device) for k, v in conditions.of_split(split, i).items()}
        rows.append(module.head.conditioning.encode(cond).reshape(-1).float().cpu())
    return torch.stack(rows)


def mouth_thumbnail(split: Split, index: int, size: int) -> torch.Tensor:
    """``[3, size, size]`` mouth crop of a ground-truth frame."""
    y0, y1, x0, x1 = landmark_box(split.lms[index][MOUTH], split.height, split.width, pad=0.35)
    crop = split.images[index, y0:y1, x0:x1].permute(2, 0, 1).unsqueeze(0).float() / 255.0
    return F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False).squeeze(0)


def quintile_labels(values: np.ndarray) -> list[str]:
    edges = np.quantile(values, [0.2, 0.4, 0.6, 0.8])
    return [QUINTILES[int(np.searchsorted(edges, v, side="right"))] for v in values]


class ConditioningProjector(L.Callback):
    """Writes the conditioning features of up to ``max_frames`` frames (evenly spaced) to TensorBoard.

    Args:
        max_frames: frames in the embedding (training and held-out together).
        thumbnail: side of the mouth thumbnails in pixels (0: none).
    """

    def __init__(self, max_frames: int = 1000, thumbnail: int = 32) -> None:
        self.max_frames, self.thumbnail = max_frames, thumbnail

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        loggers = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        if not trainer.is_global_zero or not loggers:
            return
        datamodule = trainer.datamodule
        if datamodule.train_split is None:  # several people (data=multi_identity): one person's space is not defined
            rank_zero_info("[talker] projector: no single training split (data=multi_identity); nothing written")
            return
        frames = [("train", i) for i in range(len(datamodule.train_split))]
        frames += [("val", i) for i in range(len(datamodule.val_split))]
        keep = np.unique(np.linspace(0, len(frames) - 1, min(self.max_frames, len(frames))).round().astype(int))
        frames = [frames[k] for k in keep]
        splits = {"train": datamodule.train_split, "val": datamodule.val_split}
        was_training = module.training
        module.eval()
        try:
            features = torch.cat(
                [
                    conditioning_features(module, splits[name], datamodule.conditions, [i for n, i in frames if n == name])
                    for name in ("train", "val")
                    if any(n == name for n, _ in frames)
                ]
            )
        finally:
            module.train(was_training)
        openings = np.array([mouth_opening(splits[name].landmarks[int(splits[name].aud_ids[i])]) for name, i in frames])
        quintiles = quintile_labels(openings)
        metadata = [
            [name, str(int(splits[name].img_ids[i])), f"{opening:.5f}", quintile]
            for (name, i), opening, quintile in zip(frames, openings, quintiles)
        ]
        thumbnails = None
        if self.thumbnail > 0:
            thumbnails = torch.stack([mouth_thumbnail(splits[name], i, self.thumbnail) for name, i in frames])
        for logger in loggers:
            logger.experiment.add_embedding(
                features,
                metadata=metadata,
                metadata_header=["split", "img_id", "opening", "opening_quintile"],
                label_img=thumbnails,
                global_step=trainer.global_step,
                tag="conditioning/h_cond",
            )
            logger.experiment.flush()
