"""Evaluation at the end of a fit: render held-out frames, score them, write the run's result files.

Files written into the run folder (rank zero only):
    metrics.json      summary metrics, what was unavailable and why, provenance
    frames.csv        per-frame values
    renders/<id>.png  every rendered held-out frame
    mouth_strip.png   mouth crops of held-out frames, ground truth (top) over render (bottom)
    speed.json        speed profile (per-stage median ms, FPS, resolution, device), when configured

The same functions score externally rendered frames (``python -m talker.evaluate frames=...``).
"""

from __future__ import annotations

import json
import platform
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info
from PIL import Image
from tqdm import tqdm

from talker.data.landmarks import MOUTH, landmark_box, mouth_opening
from talker.data.layout import MANIFEST
from talker.metrics import EvalContext, EvalFrame, EvalResult, Evaluator, SpeedProfile
from talker.metrics.speed import profile_head
from talker.runs import RunFolder
from talker.utils.io import save_png, to_uint8, write_csv, write_json
from talker.utils.media import MediaError, read_audio

DATASET_AUDIO = "aud.wav"
DATASET_FPS = 25.0  # the layout's frame rate (AD-NeRF, RAD-NeRF, ER-NeRF, R2-Talker)


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


def dataset_context(root: str | Path) -> EvalContext:
    """What the evaluator should know about a dataset: its audio track and whether its landmarks are exact."""
    root = Path(root)
    audio = read_audio(root / DATASET_AUDIO) if (root / DATASET_AUDIO).is_file() else None
    exact = False
    if (root / MANIFEST).is_file():
        exact = str(json.loads((root / MANIFEST).read_text()).get("generator", "")).startswith("talker.data.synthetic")
    return EvalContext(audio=audio, sample_rate=16000, fps=DATASET_FPS, has_reference=True, landmarks_exact=exact)


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
            # Scored as the 8-bit image written to renders/, so that scoring renders/ later
            # (talker.evaluate frames=...) gives exactly the same numbers.
            pred = torch.from_numpy(to_uint8(out.rgb.view_as(item["image"]))).float() / 255.0
            yield EvalFrame(
                frame_id=item["img_id"], pred=pred, target=item["image"], landmarks=item["lms"],
                time_index=int(frames.split.aud_ids[i]),
            )
    finally:
        module.train(was_training)


def score_frames(
    frames: Iterable[EvalFrame],
    evaluator: Evaluator,
    context: EvalContext,
    out_dir: str | Path,
    provenance: dict[str, Any],
    save_renders: bool = True,
    strip_frames: int = 8,
) -> tuple[EvalResult, np.ndarray | None]:
    """Score a stream of frames and write metrics.json, frames.csv (and renders/, mouth_strip.png) into ``out_dir``."""
    out = RunFolder(out_dir)
    out_dir = out.path
    out_dir.mkdir(parents=True, exist_ok=True)
    columns: list[tuple[float, np.ndarray]] = []  # (mouth opening, tiles) per frame, for the strip

    def stream() -> Iterator[EvalFrame]:
        for frame in frames:
            if save_renders:
                save_png(out_dir / RunFolder.RENDERS / f"{frame.frame_id}.png", frame.pred)
            if frame.landmarks is not None and frame.target is not None:
                columns.append((mouth_opening(frame.landmarks), mouth_tiles(frame)))
            yield frame

    result = evaluator.evaluate(stream(), context)
    strip = mouth_strip(columns, strip_frames) if columns else None
    if strip is not None:
        save_png(out_dir / RunFolder.MOUTH_STRIP, strip.astype(np.float32) / 255.0)
    write_csv(out_dir / RunFolder.FRAMES, result.per_frame)
    out.write_metrics(
        {"metrics": result.summary, "unavailable": result.unavailable, "num_frames": len(result.per_frame), **provenance}
    )
    return result, strip


def evaluate_module(
    module: L.LightningModule,
    frames: torch.utils.data.Dataset,
    evaluator: Evaluator,
    run_dir: str | Path,
    provenance: dict[str, Any],
    save_renders: bool = True,
    strip_frames: int = 8,
    context: EvalContext | None = None,
) -> tuple[EvalResult, np.ndarray | None]:
    """Render, score and write the result files of one run; returns the result and the mouth strip."""
    if context is None:
        context = dataset_context(frames.split.root)
    return score_frames(render_eval_frames(module, frames), evaluator, context, run_dir, provenance, save_renders, strip_frames)


def write_speed_profile(module: L.LightningModule, frames: torch.utils.data.Dataset, profile: SpeedProfile, run_dir: str | Path) -> dict[str, Any]:
    """Profile the module on the held-out frames and write speed.json (not metrics.json: timings vary run to run)."""
    result = profile_head(module, frames.split, frames.conditions, profile)
    result.update({"torch": torch.__version__, "python": platform.python_version()})
    write_json(RunFolder(run_dir).speed_file, result)
    return result


class EvaluationCallback(L.Callback):
    """Scores the held-out split once training ends and writes metrics.json into the run folder.

    Args:
        evaluator: the metrics (configs/callbacks/default.yaml).
        run_dir: where the result files go.
        save_renders: keep every rendered held-out frame as renders/<id>.png.
        strip_frames: columns of mouth_strip.png.
        speed: a :class:`SpeedProfile` to time inference after scoring (speed.json), or None.
    """

    def __init__(
        self, evaluator: Evaluator, run_dir: str, save_renders: bool = True, strip_frames: int = 8, speed: SpeedProfile | None = None
    ) -> None:
        self.evaluator = evaluator
        self.run_dir = Path(run_dir)
        self.save_renders = save_renders
        self.strip_frames = strip_frames
        self.speed = speed

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        datamodule = trainer.datamodule
        provenance = {
            "split": "val",
            "dataset": str(datamodule.dataset_dir()),
            "global_step": trainer.global_step,
        }
        frames = datamodule.eval_frames()
        try:
            context = dataset_context(datamodule.dataset_dir())
        except MediaError as exc:
            rank_zero_info(f"[talker] {exc}; scoring without audio")
            context = EvalContext(landmarks_exact=False)
        result, strip = evaluate_module(
            module, frames, self.evaluator, self.run_dir, provenance, self.save_renders, self.strip_frames, context
        )
        scalars = {f"eval/{k}": v for k, v in result.summary.items()}
        if self.speed is not None:
            speed = write_speed_profile(module, frames, self.speed, self.run_dir)
            scalars.update({f"speed/{k}_ms": v for k, v in speed["stages_ms"].items()})
            scalars.update({"speed/total_ms": speed["total_ms"], "speed/fps": speed["fps"]})
        for logger in trainer.loggers:
            if not isinstance(logger, TensorBoardLogger):
                logger.log_metrics(scalars, step=trainer.global_step)
                continue
            if strip is not None:
                logger.experiment.add_image("eval/mouth_strip", strip, trainer.global_step, dataformats="HWC")
            # The run's hyperparameters with its final metrics (also logged as scalars at this step):
            # TensorBoard's hparams view then lists every run of a grid with its held-out scores.
            # train() logged the hyperparameters without metrics, which writes no hparams summary,
            # so this is the run's first one -- the one TensorBoard reads.
            logger.log_hyperparams(logger.hparams, scalars, step=trainer.global_step)
            logger.experiment.flush()
        summary = ", ".join(f"{k}={v:.3f}" for k, v in result.summary.items())
        rank_zero_info(f"[talker] held-out metrics ({len(result.per_frame)} frames): {summary}")
        for name, reason in result.unavailable.items():
            rank_zero_info(f"[talker] {name} unavailable: {reason}")
