from pathlib import Path

import pytest
import torch

from talker.data.datamodule import Frames
from talker.data.frames import FrameConditions
from talker.data.layout import load_split
from talker.metrics import SpeedProfile
from talker.metrics.speed import frame_at_resolution


class FakeClock:
    """Advances only when a stage runs: each call of a stage adds that stage's scripted duration."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_medians_exclude_warmup_and_stages_chain() -> None:
    clock = FakeClock()
    durations = {"audio": iter([0.5, 0.4, 0.002, 0.003, 0.001, 0.100]), "render": iter([1.0, 1.0, 0.010, 0.020, 0.030, 0.012])}
    seen = []

    def stage(name: str):
        def run(x):
            clock.now += next(durations[name])
            seen.append((name, x))
            return x + 1

        return run

    profile = SpeedProfile(frames=4, warmup=2, clock=clock)
    result = profile.run([("audio", stage("audio")), ("render", stage("render"))], inputs=[10, 20])
    assert result["stages_ms"]["audio"] == pytest.approx(2.5)  # median of 2, 3, 1, 100 ms; warm-up (500, 400) left out
    assert result["stages_ms"]["render"] == pytest.approx(16.0)  # median of 10, 20, 30, 12
    # The total is the median of per-frame totals (12, 23, 31, 112), not the sum of stage medians.
    assert result["total_ms"] == pytest.approx(27.0)
    assert result["fps"] == pytest.approx(1000 / 27.0)
    assert result["timer"] == "wall clock"
    assert seen[:2] == [("audio", 10), ("render", 11)] and seen[2] == ("audio", 20)  # output feeds the next stage; inputs cycle


def test_frames_at_the_dataset_resolution_are_the_evaluation_rays(tiny_clip: Path) -> None:
    split = load_split(tiny_clip, "val")
    native = frame_at_resolution(split, 0, None, FrameConditions())
    reference = Frames(split, FrameConditions())[0]
    torch.testing.assert_close(native["rays_d"], reference["rays_d"])
    torch.testing.assert_close(native["background"], reference["background"], atol=1e-6, rtol=0)
    double = frame_at_resolution(split, 0, 2 * split.height, FrameConditions())
    assert double["shape"] == (64, 64) and double["rays_d"].shape == (64 * 64, 3)
    # The centre ray is unchanged by the scaled intrinsics.
    centre = lambda f, n: f["rays_d"].view(n, n, 3)[n // 2 - 1 : n // 2 + 1, n // 2 - 1 : n // 2 + 1].mean((0, 1))  # noqa: E731
    torch.testing.assert_close(centre(double, 64), centre(native, 32), atol=1e-3, rtol=0)


@pytest.mark.requires_cuda
def test_cuda_pipelines_are_timed_with_events() -> None:
    x = torch.randn(512, 512, device="cuda")
    result = SpeedProfile(frames=3, warmup=1).run([("matmul", lambda a: a @ a)], [x], device="cuda")
    assert result["timer"] == "cuda events" and result["stages_ms"]["matmul"] > 0
