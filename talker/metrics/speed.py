"""Inference speed profile (R2-Talker Table 5): time per module and frames per second at a resolution.

A pipeline is a list of named stages; each input frame goes through them in order (one stage's
output is the next one's input). Times are taken with CUDA events on a GPU and the wall clock on a
CPU, the first ``warmup`` frames are left out, and every figure is the median over the remaining
``frames`` frames (inputs are cycled when fewer are given).
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from talker.data.cameras import pixel_rays
from talker.data.frames import FrameConditions
from talker.data.layout import Split

Stage = tuple[str, Callable[[Any], Any]]


class SpeedProfile:
    """Times a pipeline of stages.

    Args:
        resolution: output height in pixels (width follows the aspect ratio); None: the dataset's.
        frames: timed frames.
        warmup: untimed frames first (allocator, caches, lazy initialisation).
        clock: wall-clock source in seconds (tests inject a fake one).
    """

    def __init__(
        self,
        resolution: int | None = None,
        frames: int = 10,
        warmup: int = 3,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if frames < 1 or warmup < 0:
            raise ValueError(f"speed profile: frames must be >= 1 and warmup >= 0, got {frames}, {warmup}")
        self.resolution, self.frames, self.warmup = resolution, frames, warmup
        self.clock = clock

    def run(self, stages: Sequence[Stage], inputs: Sequence[Any], device: torch.device | str = "cpu") -> dict[str, Any]:
        """Per-stage and total median milliseconds, FPS, and what they were measured on.

        ``device`` is where the stages run: CUDA events time a CUDA pipeline, the wall clock a CPU one.
        """
        if not inputs:
            raise ValueError("speed profile: no input frames")
        device = torch.device(device)
        cuda = device.type == "cuda"
        times: dict[str, list[float]] = {name: [] for name, _ in stages}
        totals: list[float] = []
        for i in range(self.warmup + self.frames):
            x = inputs[i % len(inputs)]
            elapsed: dict[str, float] = {}
            for name, fn in stages:
                x, elapsed[name] = (_time_cuda if cuda else self._time_wall)(fn, x)
            if i >= self.warmup:
                for name, ms in elapsed.items():
                    times[name].append(ms)
                totals.append(sum(elapsed.values()))
        total = statistics.median(totals)
        return {
            "stages_ms": {name: statistics.median(v) for name, v in times.items()},
            "total_ms": total,
            "fps": 1000.0 / total if total > 0 else float("inf"),
            "frames": self.frames,
            "warmup": self.warmup,
            "timer": "cuda events" if cuda else "wall clock",
            "device": torch.cuda.get_device_name(device) if cuda else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        }

    def _time_wall(self, fn: Callable[[Any], Any], x: Any) -> tuple[Any, float]:
        start = self.clock()
        out = fn(x)
        return out, (self.clock() - start) * 1000.0


def _time_cuda(fn: Callable[[Any], Any], x: Any) -> tuple[Any, float]:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    out = fn(x)
    end.record()
    end.synchronize()
    return out, start.elapsed_time(end)


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


def head_stages(module: L.LightningModule) -> list[Stage]:
    """The head module's inference as two stages: the conditioning strategy, then volume rendering."""
    head = module.head

    def conditioning(frame: Mapping[str, Any]) -> tuple[Mapping[str, Any], Any]:
        return frame, head.condition(frame["cond"])

    def render(frame_and_cond: tuple[Mapping[str, Any], Any]) -> Any:
        return head.render_conditioned(*frame_and_cond)

    return [("conditioning", conditioning), ("render", render)]


@torch.no_grad()
def profile_head(module: L.LightningModule, split: Split, conditions: FrameConditions, profile: SpeedProfile) -> dict[str, Any]:
    """Speed profile of a trained head module on the first held-out frames of ``split``."""
    device = module.device
    count = min(len(split), profile.frames + profile.warmup)
    inputs = []
    for i in range(count):
        frame = frame_at_resolution(split, i, profile.resolution, conditions)
        inputs.append({k: _to(v, device) for k, v in frame.items()})
    was_training = module.training
    module.eval()
    try:
        result = profile.run(head_stages(module), inputs, device)
    finally:
        module.train(was_training)
    rows, cols = inputs[0]["shape"]
    return {"resolution": f"{cols}x{rows}", **result}


def _to(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, Mapping):
        return {k: _to(v, device) for k, v in value.items()}
    return value
