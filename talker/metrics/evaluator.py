"""One evaluator for every arm and baseline: runs a list of metrics over frames."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from talker.metrics.base import EvalContext, EvalFrame, Metric, MetricUnavailable, MetricUnavailableWarning


@dataclass
class EvalResult:
    """``summary``: metric name -> value; ``per_frame``: one row per frame; ``unavailable``: name -> reason."""

    summary: dict[str, float]
    per_frame: list[dict[str, float]]
    unavailable: dict[str, str] = field(default_factory=dict)


class Evaluator:
    """Scores frames with a fixed set of metrics (configured in configs/callbacks/default.yaml).

    ``metrics`` is a list, or a mapping name -> metric (entries set to None are switched off, so
    ``callbacks.evaluation.evaluator.metrics.fid=null`` drops FID from the command line).
    A metric that raises :class:`MetricUnavailable` is reported in ``EvalResult.unavailable`` with
    its reason, and a :class:`MetricUnavailableWarning` is issued; the others carry on.
    """

    def __init__(self, metrics: Sequence[Metric] | Mapping[str, Metric | None]) -> None:
        items = list(metrics.values()) if isinstance(metrics, Mapping) else list(metrics)
        self.metrics = [m for m in items if m is not None]

    @property
    def needs_other_condition(self) -> bool:
        """Whether a metric reads ``EvalFrame.pred_other_condition`` (else it is not rendered)."""
        return any(m.needs_other_condition for m in self.metrics)

    def evaluate(self, frames: Iterable[EvalFrame], context: EvalContext | None = None) -> EvalResult:
        context = context or EvalContext()
        unavailable: dict[str, str] = {}
        active: list[Metric] = []

        def drop(metric: Metric, exc: MetricUnavailable) -> None:
            unavailable[metric.name] = str(exc)
            warnings.warn(f"{metric.name} unavailable: {exc}", MetricUnavailableWarning, stacklevel=3)
            if metric in active:
                active.remove(metric)

        for metric in self.metrics:
            metric.reset()
            if metric.needs_reference and not context.has_reference:
                drop(metric, MetricUnavailable("needs ground-truth frames and none were given"))
                continue
            try:
                metric.prepare(context)
                active.append(metric)
            except MetricUnavailable as exc:
                drop(metric, exc)

        rows = []
        for frame in frames:
            row: dict[str, float] = {"frame_id": frame.frame_id}
            for metric in list(active):  # drop() removes from active
                try:
                    row.update(metric.update(frame))
                except MetricUnavailable as exc:
                    drop(metric, exc)
            rows.append(row)
        summary: dict[str, float] = {}
        for metric in list(active):  # drop() removes from active
            try:
                summary.update(metric.compute())
            except MetricUnavailable as exc:
                drop(metric, exc)
        return EvalResult(summary=summary, per_frame=rows, unavailable=unavailable)
