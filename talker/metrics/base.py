"""What every metric sees, the face / mouth regions derived from the 68 landmarks, and the Metric contract."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from talker.data.landmarks import face_box, mouth_box


@dataclass
class EvalFrame:
    """One scored frame.

    Attributes:
        frame_id: the frame's id (``img_id`` of a dataset frame, or its position in a video).
        pred: rendered frame ``[H, W, 3]`` in [0, 1].
        target: ground-truth frame ``[H, W, 3]`` in [0, 1], or None when there is none (cross-driven).
        landmarks: reference landmarks ``[68, 2]`` (x, y, pixels) of the frame, or None.
        time_index: the frame's position on the audio timeline (``aud_id``; frame k of a video: k).
        pred_other_condition: ``pred`` with its mouth box rendered under another held-out frame's
            condition (:mod:`talker.evaluation.condition_gap`), or None (external and driven frames).
        pred_other_eyes: ``pred`` with its eyes box rendered under its own condition with only the eye
            ratio replaced by the clip's farthest from the frame's own
            (:func:`talker.evaluation.condition_gap.other_eye_ratio`), or None (also for a head without an
            eye signal).
        eye_ratio_swap: how far that eye ratio is from the frame's own (``|delta EAR|``, about 0.3 for an
            open eye against a closed one), or None with ``pred_other_eyes``.
    """

    frame_id: int
    pred: Tensor
    target: Tensor | None = None
    landmarks: Tensor | None = None
    time_index: int | None = None
    pred_other_condition: Tensor | None = None
    pred_other_eyes: Tensor | None = None
    eye_ratio_swap: float | None = None


@dataclass
class EvalContext:
    """What is known about a whole sequence before its frames arrive.

    Attributes:
        audio: mono waveform in [-1, 1] covering the clip from time index 0, or None.
        sample_rate: of ``audio``.
        fps: video frame rate (time index / fps = seconds).
        has_reference: whether frames carry ground-truth images.
        landmarks_exact: whether ``EvalFrame.landmarks`` are exact ground truth (synthetic data),
            not the output of some detector.
    """

    audio: np.ndarray | None = None
    sample_rate: int = 16000
    fps: float = 25.0
    has_reference: bool = True
    landmarks_exact: bool = False


class MetricUnavailable(RuntimeError):
    """A metric cannot be computed here (weights, package or input missing); the message says why."""


class MetricUnavailableWarning(UserWarning):
    """Warned once per unavailable metric, with the reason (naming the missing file when there is one)."""


def regions(frame: EvalFrame) -> dict[str, tuple[int, int, int, int] | None]:
    """Named crops of a frame: ``""`` (full frame), ``"face"`` and ``"mouth"`` (from landmarks)."""
    h, w = frame.pred.shape[:2]
    out: dict[str, tuple[int, int, int, int] | None] = {"": (0, h, 0, w)}
    if frame.landmarks is not None:
        out["face"] = face_box(frame.landmarks, h, w)
        out["mouth"] = mouth_box(frame.landmarks, h, w)
    return out


def crop(image: Tensor, box: tuple[int, int, int, int]) -> Tensor:
    y0, y1, x0, x1 = box
    return image[y0:y1, x0:x1]


class Metric(ABC):
    """A metric over a sequence of frames: ``prepare`` once, ``update`` per frame, ``compute`` at the end.

    ``update`` returns the frame's own values (written to the per-frame CSV), possibly empty for
    set-level metrics such as FID. Names are suffixed by region: ``psnr``, ``psnr_face``, ...
    Any step may raise :class:`MetricUnavailable`; the evaluator then reports the metric as
    unavailable with that reason instead of a value.
    """

    name: str
    needs_reference: bool = True  # needs ground-truth frames (False: scores renders alone, e.g. Sync)
    # reads EvalFrame.pred_other_condition / pred_other_eyes: the held-out evaluation renders them only
    # when a metric does
    needs_other_condition: bool = False

    def prepare(self, context: EvalContext) -> None:
        """Called before the first frame of a sequence; load weights here (lazily, once)."""

    @abstractmethod
    def update(self, frame: EvalFrame) -> dict[str, float]: ...

    @abstractmethod
    def compute(self) -> dict[str, float]: ...

    def reset(self) -> None:
        pass


class FrameMeanMetric(Metric):
    """A metric whose sequence value is the mean over frames of its per-frame values, per key."""

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = defaultdict(list)

    def compute(self) -> dict[str, float]:
        return {key: sum(v) / len(v) for key, v in self.values.items()}

    def reset(self) -> None:
        self.values.clear()


def region_key(name: str, region: str) -> str:
    return f"{name}_{region}" if region else name


def as_float(value: Tensor | float) -> float:
    return float(value.item()) if isinstance(value, torch.Tensor) else float(value)


def resolve_device(device: str | None) -> torch.device:
    """``None`` / ``"auto"``: CUDA when available, else CPU."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
