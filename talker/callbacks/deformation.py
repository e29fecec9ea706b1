"""Deformation heat maps (LokiTalk, Fig. 5) at validation and at the end of a fit: TensorBoard images and
PNGs in the run folder (``deformation/``), for heads whose strategy warps points (``talker.evaluation.deformation``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger

from talker.evaluation.deformation import deformation_maps, heat_map_image
from talker.utils.io import save_png


class DeformationMaps(L.Callback):
    """Writes ``<run_dir>/deformation/step<k>_frame<id>.png`` for every validation frame and
    ``final_frame<id>.png`` for the first held-out frame when the fit ends: the per-pixel offset
    magnitude of each deformation the strategy reports (left to right, in its order, on one scale),
    and logs each map to TensorBoard (``deformation/<name>``, its own scale; ``deformation/<name>_mean``).
    Does nothing for a head without a warp.

    Args:
        run_dir: the run folder.
    """

    def __init__(self, run_dir: str) -> None:
        self.run_dir = Path(run_dir)

    def _write(self, trainer: L.Trainer, module: L.LightningModule, item: Mapping[str, Any], tag: str) -> None:
        maps = deformation_maps(module.head, item)
        if not maps:
            return
        image = heat_map_image(maps)
        save_png(self.run_dir / "deformation" / f"{tag}_frame{int(item['img_id'])}.png", image.unsqueeze(-1).expand(*image.shape, 3))
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                for name, value in maps.items():
                    logger.experiment.add_image(f"deformation/{name}", heat_map_image({name: value}), trainer.global_step, dataformats="HW")
                    logger.experiment.add_scalar(f"deformation/{name}_mean", float(value.mean()), trainer.global_step)

    def on_validation_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if trainer.is_global_zero and not trainer.sanity_checking:
            self._write(trainer, module, batch, f"step{trainer.global_step:07d}")

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.is_global_zero and trainer.datamodule is not None:
            frames = trainer.datamodule.eval_frames()
            if len(frames):
                was_training = module.head.training
                module.head.eval()
                try:
                    self._write(trainer, module, frames[0], "final")
                finally:
                    module.head.train(was_training)
