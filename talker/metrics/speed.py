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
from collections.abc import Callable, Sequence
from typing import Any

import torch


TimedStage = tuple[str, Callable[[Any], Any]]  # (name, function): one step of a timed pipeline


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

    def run(self, stages: Sequence[TimedStage], inputs: Sequence[Any], device: torch.device | str = "cpu") -> dict[str, Any]:
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
