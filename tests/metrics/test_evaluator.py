import pytest
import torch

from talker.metrics import PSNR, EvalContext, EvalFrame, Evaluator, Metric, MetricUnavailable, MetricUnavailableWarning


class Failing(Metric):
    """Raises MetricUnavailable at a chosen step."""

    def __init__(self, name: str, step: str) -> None:
        self.name, self.step = name, step

    def prepare(self, context: EvalContext) -> None:
        if self.step == "prepare":
            raise MetricUnavailable(f"{self.name}: /some/weights.pth missing")

    def update(self, frame: EvalFrame) -> dict[str, float]:
        if self.step == "update":
            raise MetricUnavailable("no face")
        return {self.name: 1.0}

    def compute(self) -> dict[str, float]:
        if self.step == "compute":
            raise MetricUnavailable("too few frames")
        return {self.name: 1.0}


class NoReference(Failing):
    needs_reference = False


def frames(n: int = 3, target: bool = True) -> list[EvalFrame]:
    gen = torch.Generator().manual_seed(0)
    return [
        EvalFrame(i, torch.rand(8, 8, 3, generator=gen), torch.rand(8, 8, 3, generator=gen) if target else None)
        for i in range(n)
    ]


def test_unavailable_metrics_are_reported_with_their_reason_and_others_carry_on() -> None:
    metrics = {
        "psnr": PSNR(),
        "a": Failing("a", "prepare"),
        "b": Failing("b", "update"),
        "c": Failing("c", "compute"),
        "off": None,  # switched off from the config
    }
    with pytest.warns(MetricUnavailableWarning, match="/some/weights.pth"):
        result = Evaluator(metrics).evaluate(frames())
    assert set(result.unavailable) == {"a", "b", "c"}
    assert result.unavailable["a"] == "a: /some/weights.pth missing"
    assert result.unavailable["b"] == "no face" and result.unavailable["c"] == "too few frames"
    assert set(result.summary) == {"psnr"}  # never a value for an unavailable metric
    assert all("b" not in row and "a" not in row for row in result.per_frame)
    assert len(result.per_frame) == 3


def test_metrics_needing_ground_truth_are_unavailable_without_it() -> None:
    with pytest.warns(MetricUnavailableWarning):
        result = Evaluator([PSNR(), NoReference("sync", "none")]).evaluate(frames(target=False), EvalContext(has_reference=False))
    assert "ground-truth" in result.unavailable["psnr"]
    assert result.summary == {"sync": 1.0}
