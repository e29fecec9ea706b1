"""Inference speed of a trained head (R2-Talker Table 5): the held-out frames at a resolution, timed
per module (conditioning, rendering) by :class:`~talker.metrics.SpeedProfile`; written to speed.json."""

from __future__ import annotations

import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from talker.data.cameras import pixel_rays
from talker.data.datamodule import Frames
from talker.data.frames import FrameConditions
from talker.data.layout import Split
from talker.head.model import TalkingHead
from talker.metrics.speed import SpeedProfile, TimedStage
from talker.runs import RunFolder
from talker.utils.io import write_json


def frame_at_resolution(split: Split, index: int, resolution: int | None, conditions: FrameConditions) -> dict[str, Any]:
    """Every ray of frame ``index`` of ``split`` rendered at ``resolution`` rows (intrinsics scaled)."""
    h, w = split.height, split.width
    rows = resolution or h
    cols = max(1, round(w * rows / h))
    scale = torch.tensor([cols / w, rows / h, cols / w, rows / h])
    ys, xs = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    pixels = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=-1)
    rays_o, rays_d = pixel_rays(split.poses[index], split.intrinsics * scale, pixels)
    background = split.backgrounds[index].permute(2, 0, 1).unsqueeze(0).float() / 255.0
    background = F.interpolate(background, size=(rows, cols), mode="bilinear", align_corners=False)
    return {
        "rays_o": rays_o,
        "rays_d": rays_d,
        "background": background.squeeze(0).permute(1, 2, 0).reshape(-1, 3),
        "cond": conditions.of_split(split, index),
        "shape": (rows, cols),
    }


def head_stages(head: TalkingHead) -> list[TimedStage]:
    """A head's inference as two stages: the conditioning strategy, then volume rendering."""

    def conditioning(frame: Mapping[str, Any]) -> tuple[Mapping[str, Any], Any]:
        return frame, head.condition(frame["cond"])

    def render(frame_and_cond: tuple[Mapping[str, Any], Any]) -> Any:
        return head.render_conditioned(*frame_and_cond)

    return [("conditioning", conditioning), ("render", render)]


@torch.no_grad()
def profile_head(head: TalkingHead, split: Split, conditions: FrameConditions, profile: SpeedProfile) -> dict[str, Any]:
    """Speed profile of a trained head on the first held-out frames of ``split``."""
    device = head.device
    count = min(len(split), profile.frames + profile.warmup)
    inputs = []
    for i in range(count):
        frame = frame_at_resolution(split, i, profile.resolution, conditions)
        inputs.append({k: _to(v, device) for k, v in frame.items()})
    was_training = head.training
    head.eval()
    try:
        result = profile.run(head_stages(head), inputs, device)
    finally:
        head.train(was_training)
    rows, cols = inputs[0]["shape"]
    return {"resolution": f"{cols}x{rows}", **result}


def _to(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, Mapping):
        return {k: _to(v, device) for k, v in value.items()}
    return value


def write_speed_profile(head: TalkingHead, frames: Frames, profile: SpeedProfile, run_dir: str | Path) -> dict[str, Any]:
    """Profile the head on the held-out frames and write speed.json (not metrics.json: timings vary run to run)."""
    result = profile_head(head, frames.split, frames.conditions, profile)
    result.update({"torch": torch.__version__, "python": platform.python_version()})
    write_json(RunFolder(run_dir).speed_file, result)
    return result
