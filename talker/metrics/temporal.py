"""Temporal stability: landmark jitter, flicker of still regions, and the head-torso seam at the neck.

Each is computed on the rendered frames and, with the same code, on the ground-truth frames when the
evaluation has them (keys ``<name>_ref``): a head that shakes, a background that flickers or a neck
that slides scores above the ground truth, which has its own natural motion. docs/metrics.md gives
the formulas. Only pairs / triples of frames that are consecutive on the time line (``time_index``
differing by 1) count, so held-out frames with gaps or a video with dropped frames are not mistaken
for motion.

Regions come from the frame's 68 landmarks (the dataset's, or for frames without any, MediaPipe's on
the ground truth, else on the render), scaled by the face: ``w`` the jaw's width (points 0-16),
``h`` the brow-to-chin height (points 17-26 to 8). See :func:`stability_regions`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from talker.data.landmarks import BROWS, JAW, MOUTH
from talker.metrics.base import EvalContext, EvalFrame, Metric, MetricUnavailable
from talker.metrics.detector import SharedFaceMesh

Box = tuple[int, int, int, int]  # y0, y1, x0, x1 (end-exclusive)
CHIN = 8
# Region geometry in face units (w: jaw width, h: brow-to-chin height); see stability_regions.
HEAD_SIDE_MARGIN = 0.35  # hair and ears reach this far beside the jaw
HEAD_TOP = 0.9  # ... and this far above the brows
TORSO_BELOW_CHIN = 0.6  # the torso region starts this far below the chin (past the neck)
SEAM_ABOVE = (0.2, 0.0)  # head-side band: from 0.2 h above the chin to the chin
SEAM_BELOW = (0.1, 0.3)  # torso-side band: from 0.1 h to 0.3 h below the chin (the neck)
SEAM_HALF_WIDTH = 0.4  # both bands span the chin's x +- 0.4 w (the neck's edges inside)


@dataclass(frozen=True)
class StabilityRegions:
    """Pixel regions of one frame: ``background`` and ``torso`` masks ``[H, W]`` (bool), and the seam's
    two bands (same width, the head-side band above the torso-side one)."""

    background: Tensor
    torso: Tensor
    seam_above: Box
    seam_below: Box


def face_scale(landmarks: Tensor) -> tuple[float, float]:
    """(w, h): the jaw's width and the brow-to-chin height, in pixels."""
    jaw, brows = landmarks[JAW], landmarks[BROWS]
    return float(jaw[:, 0].max() - jaw[:, 0].min()), float(landmarks[CHIN, 1] - brows[:, 1].min())


def stability_regions(landmarks: Tensor, height: int, width: int) -> StabilityRegions:
    """Background: above the chin and beside the head box (jaw +- 0.35 w), plus everything above
    0.9 h over the brows. Torso: every row from 0.6 h below the chin down. Seam bands: x in
    chin +- 0.4 w; rows [chin - 0.2 h, chin) above and [chin + 0.1 h, chin + 0.3 h) below."""
    w, h = face_scale(landmarks)
    jaw = landmarks[JAW]
    chin_x, chin_y = float(landmarks[CHIN, 0]), float(landmarks[CHIN, 1])
    ys = torch.arange(height).view(-1, 1).expand(height, width)
    xs = torch.arange(width).view(1, -1).expand(height, width)
    left, right = float(jaw[:, 0].min()) - HEAD_SIDE_MARGIN * w, float(jaw[:, 0].max()) + HEAD_SIDE_MARGIN * w
    top = float(landmarks[BROWS, 1].min()) - HEAD_TOP * h
    background = ((ys < chin_y) & ((xs < left) | (xs > right))) | (ys < top)
    torso = ys >= chin_y + TORSO_BELOW_CHIN * h
    x0 = max(0, round(chin_x - SEAM_HALF_WIDTH * w))
    x1 = min(width, round(chin_x + SEAM_HALF_WIDTH * w))

    def band(above: float, below: float) -> Box:
        return max(0, round(chin_y + above * h)), min(height, round(chin_y + below * h)), x0, x1

    return StabilityRegions(background, torso, band(-SEAM_ABOVE[0], -SEAM_ABOVE[1]), band(*SEAM_BELOW))


def acceleration_magnitude(points: np.ndarray) -> np.ndarray:
    """``[3, K, 2]`` positions at t-1, t, t+1 -> ``[K]`` norms of ``p(t+1) - 2 p(t) + p(t-1)``."""
    return np.linalg.norm(points[2] - 2 * points[1] + points[0], axis=-1)


def mean_abs_change(a: Tensor, b: Tensor, mask: Tensor) -> float | None:
    """Mean over ``mask`` pixels and RGB of ``|a - b|``, in 8-bit levels; None for an empty mask."""
    if not bool(mask.any()):
        return None
    return float((a.double() - b.double()).abs()[mask].mean() * 255.0)


def column_contrast(image: Tensor, above: Box, below: Box) -> np.ndarray:
    """Per column of the bands: mean of the torso-side band minus mean of the head-side band (8-bit levels)."""
    width = min(above[3] - above[2], below[3] - below[2])
    a = image[above[0] : above[1], above[2] : above[2] + width].double().mean(dim=(0, 2))
    b = image[below[0] : below[1], below[2] : below[2] + width].double().mean(dim=(0, 2))
    return ((b - a) * 255.0).numpy()


def _consecutive(previous: EvalFrame | None, frame: EvalFrame) -> bool:
    if previous is None:
        return False
    if previous.time_index is None or frame.time_index is None:
        return True  # no time line given: frames are taken as consecutive
    return frame.time_index - previous.time_index == 1


class _Sequence(Metric):
    """A metric that looks at each frame with the one before it; renders and ground truth alike."""

    needs_reference = False  # the render alone has a value; the ground truth's comes with it when given

    def __init__(self, landmarker: str | Path | None = None) -> None:
        self.detector = SharedFaceMesh(landmarker) if landmarker else None
        self.reset()

    def reset(self) -> None:
        self.previous: EvalFrame | None = None
        self.previous_landmarks: Tensor | None = None
        self.values: dict[str, list[float]] = {}
        if getattr(self, "detector", None) is not None:
            self.detector.forget()

    def landmarks(self, frame: EvalFrame) -> Tensor | None:
        """The frame's reference landmarks; MediaPipe's (on the ground truth, else the render) when it has none."""
        if frame.landmarks is not None:
            return frame.landmarks
        if self.detector is None:
            raise MetricUnavailable("frames without landmarks need the face landmarker (set `landmarker`)")
        return self.detector.landmarks68(frame.target if frame.target is not None else frame.pred)

    def add(self, key: str, value: float | None) -> None:
        if value is not None and math.isfinite(value):
            self.values.setdefault(key, []).append(value)

    def summary(self, keys: tuple[str, ...]) -> dict[str, float]:
        if not any(self.values.get(k) for k in keys):
            raise MetricUnavailable(f"no pair of consecutive frames with a face to measure {self.name} on")
        return {key: float(np.mean(v)) for key, v in self.values.items() if v}


class Flicker(_Sequence):
    """Mean absolute frame-to-frame change (8-bit levels, RGB mean) in regions that should be still or
    move only with the body: ``flicker_bg`` (background) and ``flicker_torso`` (below the neck); the
    same on the ground truth as ``flicker_bg_ref`` / ``flicker_torso_ref``. The regions are frame t's
    (:func:`stability_regions`), applied to frames t-1 and t alike.

    Args:
        landmarker: MediaPipe's ``face_landmarker.task`` for frames that carry no landmarks (None: such
            frames make the metric unavailable).
    """

    name = "flicker"

    def update(self, frame: EvalFrame) -> dict[str, float]:
        out: dict[str, float] = {}
        previous, self.previous = self.previous, frame
        if not _consecutive(previous, frame):
            return out
        landmarks = self.landmarks(frame)
        if landmarks is None:
            return out
        regions = stability_regions(landmarks, *frame.pred.shape[:2])
        for region, mask in (("bg", regions.background), ("torso", regions.torso)):
            sides = [("", frame.pred, previous.pred)]
            if frame.target is not None and previous.target is not None:
                sides.append(("_ref", frame.target, previous.target))
            for suffix, now, before in sides:
                value = mean_abs_change(now, before, mask)
                if value is not None:
                    out[f"flicker_{region}{suffix}"] = value
                    self.add(f"flicker_{region}{suffix}", value)
        return out

    def compute(self) -> dict[str, float]:
        return self.summary(("flicker_bg", "flicker_torso"))


class NeckSeam(_Sequence):
    """Disagreement between head and torso at the neck over time (``seam``; ``seam_ref`` on the ground truth).

    Per frame, per column of a strip centred on the chin, the contrast between the torso-side band
    (the neck, just below the chin) and the head-side band (just above the chin); both bands follow
    that frame's landmarks. The seam is the mean over columns and consecutive frame pairs of the
    change of that contrast, in 8-bit levels. Head and neck moving together keep it (nearly) at 0;
    a neck that slides against the head, or a boundary that opens, darkens or blurs from frame to
    frame, raises it. Flat bands carry no signal (a uniform neck scores 0 whatever moves).
    """

    name = "seam"

    def update(self, frame: EvalFrame) -> dict[str, float]:
        out: dict[str, float] = {}
        previous, previous_landmarks = self.previous, self.previous_landmarks
        landmarks = self.landmarks(frame)
        self.previous, self.previous_landmarks = frame, landmarks
        if not _consecutive(previous, frame) or landmarks is None or previous_landmarks is None:
            return out
        h, w = frame.pred.shape[:2]
        now, before = stability_regions(landmarks, h, w), stability_regions(previous_landmarks, h, w)
        sides = [("", frame.pred, previous.pred)]
        if frame.target is not None and previous.target is not None:
            sides.append(("_ref", frame.target, previous.target))
        for suffix, image, prior in sides:
            a = column_contrast(image, now.seam_above, now.seam_below)
            b = column_contrast(prior, before.seam_above, before.seam_below)
            n = min(len(a), len(b))
            if n:
                out[f"seam{suffix}"] = float(np.abs(a[:n] - b[:n]).mean())
                self.add(f"seam{suffix}", out[f"seam{suffix}"])
        return out

    def compute(self) -> dict[str, float]:
        return self.summary(("seam",))


class LandmarkJitter(_Sequence):
    """Frame-to-frame acceleration of MediaPipe's 68 landmarks, detected on every frame on its own.

    ``jitter_face`` (all 68 points) and ``jitter_mouth`` (points 48-67): the mean over landmarks and
    over triples of consecutive frames with a face of ``|p(t+1) - 2 p(t) + p(t-1)|``, in pixels per
    frame squared, on the render; ``*_ref`` the same on the ground-truth frames; on synthetic data
    (exact landmarks) also ``*_exact`` from the ground truth's exact landmarks. A still head scores 0
    (MediaPipe gives identical images identical points); a head shaking by ``A sin(2 pi f t)`` pixels
    scores ``(8 / pi) A sin^2(pi f / fps)`` over whole periods. ``jitter_detected``: share of rendered
    frames with a face found.

    Args:
        landmarker: MediaPipe's ``face_landmarker.task``.
    """

    name = "jitter"
    PARTS = {"face": slice(0, 68), "mouth": MOUTH}

    def __init__(self, landmarker: str | Path) -> None:
        super().__init__(landmarker)

    def reset(self) -> None:
        super().reset()
        self.tracks: dict[str, list[tuple[int | None, Tensor | None]]] = {"": [], "_ref": [], "_exact": []}
        self.exact = False
        self.frames = 0

    def prepare(self, context: EvalContext) -> None:
        self.detector.prepare()
        self.exact = context.landmarks_exact

    def update(self, frame: EvalFrame) -> dict[str, float]:
        self.frames += 1
        sources = {"": self.detector.landmarks68(frame.pred)}
        if frame.target is not None:
            sources["_ref"] = self.detector.landmarks68(frame.target)
        if self.exact and frame.landmarks is not None:
            sources["_exact"] = frame.landmarks
        for suffix, points in sources.items():
            track = self.tracks[suffix]
            track.append((frame.time_index, points))
            del track[:-3]
            if len(track) == 3 and all(p is not None for _, p in track) and _triple(track):
                stacked = np.stack([p.double().numpy() for _, p in track])
                for part, index in self.PARTS.items():
                    self.add(f"jitter_{part}{suffix}", float(acceleration_magnitude(stacked[:, index]).mean()))
        if sources[""] is not None:
            self.add("_detected", 1.0)
        return {}  # a triple's acceleration belongs to its middle frame, not to this row

    def compute(self) -> dict[str, float]:
        out = self.summary(("jitter_face",))
        out.pop("_detected", None)
        out["jitter_detected"] = len(self.values.get("_detected", [])) / max(1, self.frames)
        return out


def _triple(track: list[tuple[int | None, Tensor | None]]) -> bool:
    times = [t for t, _ in track]
    return None in times or (times[1] - times[0] == 1 and times[2] - times[1] == 1)
