"""Held-out evaluation of a trained head: render the held-out frames, score them, write the run's files.

The same function scores a fit when it ends (``talker.callbacks.EvaluationCallback``) and a run
folder again later (:func:`evaluate_run`, ``python -m talker.evaluate run=...``); rendering and
scoring are deterministic, so both give the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info
from omegaconf import OmegaConf
from tqdm import tqdm

from talker.config import ConfigError, instantiate
from talker.config_checks import check_values
from talker.data.datamodule import Frames, TalkingHeadDataModule
from talker.evaluation.condition_gap import under_other_condition, under_other_eyes
from talker.evaluation.scoring import dataset_context, score_frames
from talker.evaluation.speed import write_speed_profile
from talker.head.model import TalkingHead
from talker.metrics import EvalContext, EvalFrame, EvalResult, Evaluator, SpeedProfile
from talker.runs import RunFolder
from talker.utils.io import check_writable, to_uint8
from talker.utils.media import MediaError


def render_item(head: TalkingHead, item: Mapping[str, Any], cond: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
    """``[H, W, 3]`` render of a ``Frames`` item (under ``cond`` instead of its own condition if given),
    rounded to 8 bits: scored as the image written to renders/, so that scoring renders/ later
    (``talker.evaluate frames=...``) gives exactly the same numbers."""
    device = head.device
    batch = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in item.items()}
    batch["cond"] = {k: v.to(device) for k, v in (item["cond"] if cond is None else cond).items()}
    out = head.render_frame(batch)
    return torch.from_numpy(to_uint8(out.rgb.view_as(item["image"]))).float() / 255.0


@torch.no_grad()
def render_eval_frames(
    head: TalkingHead, frames: Frames, progress: bool = True, other_condition: bool = False
) -> Iterator[EvalFrame]:
    """Render every frame of ``frames`` with its own condition, in eval mode; with ``other_condition``
    also its mouth box under another held-out frame's (``EvalFrame.pred_other_condition``) and, for a
    head with an eye signal, its eyes box with only the eye ratio swapped for the clip's farthest from
    its own (``pred_other_eyes``, ``eye_ratio_swap``: :func:`talker.evaluation.condition_gap.other_eye_ratio`)."""
    was_training = head.training
    head.eval()
    try:
        for i in tqdm(range(len(frames)), desc="rendering held-out frames", disable=not progress):
            item = frames[i]
            pred = render_item(head, item)
            other_eyes = under_other_eyes(head, frames, i, item, pred) if other_condition else None
            yield EvalFrame(
                frame_id=item["img_id"], pred=pred, target=item["image"], landmarks=item["lms"],
                time_index=int(frames.split.aud_ids[i]),
                pred_other_condition=under_other_condition(head, frames, i, item, pred) if other_condition else None,
                pred_other_eyes=other_eyes[0] if other_eyes else None,
                eye_ratio_swap=other_eyes[1] if other_eyes else None,
            )
    finally:
        head.train(was_training)


@dataclass
class HeldoutResult:
    """What :func:`evaluate_heldout` wrote: the scores, the mouth strip and the speed profile (or None)."""

    result: EvalResult
    strip: np.ndarray | None
    speed: dict[str, Any] | None


def evaluate_heldout(
    head: TalkingHead,
    datamodule: TalkingHeadDataModule,
    evaluator: Evaluator,
    run_dir: str | Path,
    provenance: Mapping[str, Any],
    speed: SpeedProfile | None = None,
    save_renders: bool = True,
    strip_frames: int = 8,
    require_audio: bool = False,
) -> HeldoutResult:
    """Render and score the held-out split into ``run_dir`` (metrics.json, frames.csv, renders/,
    mouth_strip.png; speed.json with ``speed``).

    A dataset audio track that cannot be read fails when ``require_audio`` (re-scoring a run), else
    the frames are scored without audio (the end of a fit must not lose the run)."""
    try:
        context = dataset_context(datamodule.dataset_dir())
    except MediaError as exc:
        if require_audio:
            raise ConfigError(str(exc)) from exc
        rank_zero_info(f"[talker] {exc}; scoring without audio")
        context = EvalContext(landmarks_exact=False)
    frames = datamodule.eval_frames()
    provenance = {"split": "val", "dataset": str(datamodule.dataset_dir()), **provenance}
    result, strip = score_frames(
        render_eval_frames(head, frames, other_condition=evaluator.needs_other_condition), evaluator, context, run_dir, provenance, save_renders, strip_frames
    )
    timing = write_speed_profile(head, frames, speed, run_dir) if speed is not None else None
    return HeldoutResult(result, strip, timing)


def evaluate_run(
    run: str | Path,
    checkpoint: str | Path | None = None,
    device: str | None = None,
    speed: bool = False,
    resolution: int | None = None,
    overrides: Sequence[str] = (),
) -> dict:
    """Re-score the run folder ``run``; returns the summary metrics.

    ``overrides`` (``key=value`` with dots) change the run's config first (e.g. the evaluator's
    metrics); ``speed`` also rewrites speed.json (at ``resolution`` rows if given)."""
    folder = RunFolder(run)
    cfg = folder.config()
    if overrides:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
        check_values(cfg)
    check_writable(folder.path)  # metrics.json, frames.csv and renders/ are rewritten there
    cfg.run_dir = str(folder.path)
    ckpt = Path(checkpoint) if checkpoint else folder.checkpoint_file
    state = folder.checkpoint(ckpt)  # before anything is built: a damaged file fails in a second
    datamodule = instantiate(cfg.data, "data")
    module = folder.load_module(cfg, state, device or ("cuda" if torch.cuda.is_available() else "cpu"))
    datamodule.prepare_data()
    datamodule.setup("validate")
    evaluator = instantiate(cfg.callbacks.evaluation.evaluator, "callbacks.evaluation.evaluator")
    profile = None
    if speed:
        configured = OmegaConf.select(cfg, "callbacks.evaluation.speed")
        profile = instantiate(configured, "callbacks.evaluation.speed") if configured is not None else SpeedProfile()
        if resolution is not None:
            profile.resolution = int(resolution)
    provenance = {"global_step": state.get("global_step"), "checkpoint": str(ckpt)}
    done = evaluate_heldout(module.head, datamodule, evaluator, folder.path, provenance, speed=profile, require_audio=True)
    if done.speed is not None:
        timing = done.speed
        print(f"[talker] {folder.speed_file}: {timing['resolution']}, {timing['total_ms']:.2f} ms, {timing['fps']:.2f} FPS")
    return done.result.summary
