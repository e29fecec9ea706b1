"""Does a head use its condition? Mouth-box PSNR with each frame's own condition minus with another frame's.

A conditioned head that has learned the mouth loses dB when a held-out frame is rendered with another
held-out frame's driving signal; a head that ignores its condition (a deaf audio path, a cut condition)
renders the same mouth both ways and scores a gap of 0. The held-out evaluation renders the second
image (``EvalFrame.pred_other_condition``, see :mod:`talker.evaluation.condition_gap`); tables mark a
row whose gap is below :data:`talker.reporting.tables.HEARING_THRESHOLD_DB`.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from talker.data.landmarks import eyes_box, mouth_box
from talker.metrics.base import EvalFrame, FrameMeanMetric, MetricUnavailable, as_float, crop
from talker.metrics.psnr import psnr


def _require_other_condition(frame: EvalFrame) -> None:
    """Both gaps need the held-out evaluation's renders under another frame's condition."""
    if frame.pred_other_condition is None:
        raise MetricUnavailable(
            "needs the frames rendered under another held-out frame's condition, which only a trained "
            "head's held-out evaluation renders (not external or driven frames, nor a single held-out frame)"
        )


def _box_psnrs(
    frame: EvalFrame, other: Tensor, box_of: Callable[..., tuple[int, int, int, int]], region: str
) -> tuple[float, float]:
    """PSNR of ``frame.pred`` and of ``other`` against the target, inside ``box_of(landmarks, H, W)``."""
    if frame.landmarks is None:
        raise MetricUnavailable(f"needs the frames' 68 landmarks for the {region} box")
    box = box_of(frame.landmarks, *frame.pred.shape[:2])
    target = crop(frame.target, box)
    return as_float(psnr(crop(frame.pred, box), target)), as_float(psnr(crop(other, box), target))


class ConditionGap(FrameMeanMetric):
    """``psnr_mouth_other``: mouth-box PSNR of the frame rendered under another frame's condition;
    ``cond_gap_mouth``: ``psnr_mouth`` minus it (the same box, the same 8-bit frames), mean over frames.

    Only frames that carry ``pred_other_condition`` can be scored: a head's held-out frames. External
    renders and driven videos have none, and the metric is reported unavailable for them.
    """

    name = "cond_gap"
    needs_other_condition = True

    def update(self, frame: EvalFrame) -> dict[str, float]:
        _require_other_condition(frame)
        own, other = _box_psnrs(frame, frame.pred_other_condition, mouth_box, "mouth")
        out = {"psnr_mouth_other": other, "cond_gap_mouth": own - other}
        for key, value in out.items():
            self.values[key].append(value)
        return out


class EyeConditionGap(FrameMeanMetric):
    """The eye condition gap: ``psnr_eyes`` (eyes-box PSNR with each frame's own condition),
    ``psnr_eyes_other`` (the same box with only the eye ratio replaced), ``cond_gap_eyes`` (the first
    minus the second) and ``eye_ratio_swap`` (how far the replacing eye ratio is from the frame's own),
    mean over frames.

    The replacing ratio is not the paired frame's (the mouth gap's partner): it is the ratio of the clip's
    frames, training and held-out, farthest from the frame's own
    (:func:`talker.evaluation.condition_gap.other_eye_ratio`), so that an open held-out frame is rendered
    with closed eyes and a closed one with open eyes. Blinks are rare, and a held-out split without one
    would swap equal ratios and score 0 whatever the head does. ``eye_ratio_swap`` near 0 (a clip that
    never blinks) means the gap could not see anything.

    The held-out evaluation renders ``EvalFrame.pred_other_eyes`` for heads that declare an eye signal
    (``TalkingHead.drives_eyes``: LokiTalk's ``F_e``, RAD-NeRF's ``EyeBlink``); for any other the
    metric is reported unavailable (a table shows "–", not 0: there is no eye signal to swap).
    """

    name = "cond_gap_eyes"
    needs_other_condition = True

    def update(self, frame: EvalFrame) -> dict[str, float]:
        _require_other_condition(frame)
        if frame.pred_other_eyes is None:
            raise MetricUnavailable("the head has no eye signal to swap (no part of it reads the eye ratio)")
        own, other = _box_psnrs(frame, frame.pred_other_eyes, eyes_box, "eyes")
        out = {"psnr_eyes": own, "psnr_eyes_other": other, "cond_gap_eyes": own - other}
        if frame.eye_ratio_swap is not None:
            out["eye_ratio_swap"] = frame.eye_ratio_swap
        for key, value in out.items():
            self.values[key].append(value)
        return out
