"""Evaluation at the end of a fit: render held-out frames, score them, write the run's result files.

Files written into the run folder (rank zero only):
    metrics.json      summary metrics, what was unavailable and why, provenance
    frames.csv        per-frame values
    renders/<id>.png  every rendered held-out frame
    mouth_strip.png   mouth crops of held-out frames, ground truth (top) over render (bottom)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info
from PIL import Image
from tqdm import tqdm

from talker.metrics import EvalFrame, EvalResult, Evaluator
from talker.data.landmarks import MOUTH, landmark_box, mouth_opening
from talker.utils.io import save_png, to_uint8, write_csv, write_json

METRICS_FILE = "metrics.json"


def mouth_tiles(frame: EvalFrame, size: int = 64) -> np.ndarray:
    """Ground-truth mouth crop above the rendered one, ``[2 * size, size, 3]`` uint8."""
    h, w = frame.target.shape[:2]
    y0, y1, x0, x1 = landmark_box(frame.landmarks[MOUTH], h, w, pad=0.35)
    tiles = [
        np.asarray(Image.fromarray(to_uint8(image[y0:y1, x0:x1])).resize((size, size), Image.NEAREST))
        for image in (frame.target, frame.pred)
    ]
    return np.concatenate(tiles, axis=0)


def mouth_strip(columns: Sequence[tuple[float, np.ndarray]], count: int = 8) -> np.ndarray:
    """Columns from :func:`mouth_tiles`, picked to span the range of mouth openings (closed -> open)."""
    order = sorted(columns, key=lambda c: c[0])
    idx = np.linspace(0, len(order) - 1, min(count, len(order))).round().astype(int)
    return np.concatenate([order[i][1] for i in idx], axis=1)


@torch.no_grad()
def render_eval_frames(module: L.LightningModule, frames: torch.utils.data.Dataset, progress: bool = True) -> Iterator[EvalFrame]:
    """Render every frame of ``frames`` (a ``Frames`` dataset) with ``module.render_frame``."""
    was_training = module.training
    module.eval()
    try:
        for i in tqdm(range(len(frames)), desc="rendering held-out frames", disable=not progress):
            item = frames[i]
            batch = {k: (v.to(module.device) if torch.is_tensor(v) else v) for k, v in item.items()}
            batch["cond"] = {k: v.to(module.device) for k, v in item["cond"].items()}
            out = module.render_frame(batch)
            pred = out.rgb.view_as(item["image"]).clamp(0, 1).cpu()
            yield EvalFrame(frame_id=item["img_id"], pred=pred, target=item["image"], landmarks=item["lms"])
    finally:
        module.train(was_training)


def evaluate_module(
    module: L.LightningModule,
    frames: torch.utils.data.Dataset,
    evaluator: Evaluator,
    run_dir: str | Path,
    provenance: dict[str, Any],
    save_renders: bool = True,
    strip_frames: int = 8,
) -> tuple[EvalResult, np.ndarray]:
    """Render, score and write the result files of one run; returns the result and the mouth strip."""
    run_dir = Path(run_dir)
    columns: list[tuple[float, np.ndarray]] = []  # (mouth opening, tiles) per frame, for the strip

    def stream() -> Iterator[EvalFrame]:
        for frame in render_eval_frames(module, frames):
            if save_renders:
                save_png(run_dir / "renders" / f"{frame.frame_id}.png", frame.pred)
            columns.append((mouth_opening(frame.landmarks), mouth_tiles(frame)))
            yield frame

    result = evaluator.evaluate(stream())
    strip = mouth_strip(columns, strip_frames)
    save_png(run_dir / "mouth_strip.png", strip.astype(np.float32) / 255.0)
    write_csv(run_dir / "frames.csv", result.per_frame)
    write_json(
        run_dir / METRICS_FILE,
        {"metrics": result.summary, "unavailable": result.unavailable, "num_frames": len(result.per_frame), **provenance},
    )
    return result, strip


class EvaluationCallback(L.Callback):
    """Scores the held-out split once training ends and writes metrics.json into the run folder."""

    def __init__(self, evaluator: Evaluator, run_dir: str, save_renders: bool = True, strip_frames: int = 8) -> None:
        self.evaluator = evaluator
        self.run_dir = Path(run_dir)
        self.save_renders = save_renders
        self.strip_frames = strip_frames

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        datamodule = trainer.datamodule
        provenance = {
            "split": "val",
            "dataset": str(datamodule.dataset_dir()),
            "global_step": trainer.global_step,
        }
        result, strip = evaluate_module(
            module, datamodule.eval_frames(), self.evaluator, self.run_dir, provenance, self.save_renders, self.strip_frames
        )
        for logger in trainer.loggers:
            logger.log_metrics({f"eval/{k}": v for k, v in result.summary.items()}, step=trainer.global_step)
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("eval/mouth_strip", strip, trainer.global_step, dataformats="HWC")
                # Re-log the run's hyperparameters with its final metrics for the hparams view.
                logger.log_hyperparams(logger.hparams, {f"eval/{k}": v for k, v in result.summary.items()})
                logger.experiment.flush()
        summary = ", ".join(f"{k}={v:.3f}" for k, v in result.summary.items())
        rank_zero_info(f"[talker] held-out metrics ({len(result.per_frame)} frames): {summary}")
