import pytest
import torch

from talker.metrics import SpeedProfile


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


@pytest.mark.requires_cuda
def test_cuda_pipelines_are_timed_with_events() -> None:
    x = torch.randn(512, 512, device="cuda")
    result = SpeedProfile(frames=3, warmup=1).run([("matmul", lambda a: a @ a)], [x], device="cuda")
    assert result["timer"] == "cuda events" and result["stages_ms"]["matmul"] > 0
