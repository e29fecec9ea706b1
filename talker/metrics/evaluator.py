"""One evaluator for every arm and baseline: runs a list of metrics over frames."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from talker.metrics.base import EvalFrame, Metric


@dataclass
class EvalResult:
    """``summary``: metric name -> value; ``per_frame``: one row per frame; ``unavailable``: name -> reason."""

    summary: dict[str, float]
    per_frame: list[dict[str, float]]
    unavailable: dict[str, str] = field(default_factory=dict)


class Evaluator:
    """Scores frames with a fixed list of metrics (configured in configs/callbacks)."""

    def __init__(self, metrics: Sequence[Metric]) -> None:
        self.metrics = list(metrics)

    def evaluate(self, frames: Iterable[EvalFrame]) -> EvalResult:
        for metric in self.metrics:
            metric.reset()
        rows = []
        for frame in frames:
            row: dict[str, float] = {"frame_id": frame.frame_id}
            for metric in self.metrics:
                row.update(metric.update(frame))
            rows.append(row)
        summary: dict[str, float] = {}
        for metric in self.metrics:
            summary.update(metric.compute())
        return EvalResult(summary=summary, per_frame=rows)
