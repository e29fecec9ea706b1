"""Landmark distance (LMD, Chen et al. 2018) of the mouth, as the talking-head papers report it, and
LMD-E, the same distance over the eyes (LokiTalk, Table 1).

Per frame: the 20 mouth landmarks (68-point scheme, points 48-67) are detected on the rendered and
on the ground-truth frame by the same detector; each set is centred on its own mean (so a global
shift of the face does not count); LMD is the mean Euclidean distance between corresponding points,
in pixels of the evaluated frames. The sequence value is the mean over frames where both
detections succeed. LMD-E is computed from the same detections of the same frames, the same way,
over the 12 eye points (36-47, ``talker.data.landmarks.EYES``).

On synthetic data the dataset's landmarks are exact, so ``lmd_gt`` (``lmd_e_gt``) additionally
compares the render's detected mouth (eyes) with the true one (no detector error on the ground-truth side).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import torch

from talker.data.landmarks import EYES, MOUTH
from talker.metrics.base import EvalContext, EvalFrame, Metric, MetricUnavailable
from talker.metrics.detector import SharedFaceMesh


def landmark_distance(a: torch.Tensor, b: torch.Tensor, points: slice) -> float:
    """Mean L2 distance of the ``points`` of two ``[68, 2]`` landmark sets, each centred on its own mean."""
    pa, pb = a[points].double(), b[points].double()
    return float(((pa - pa.mean(0)) - (pb - pb.mean(0))).norm(dim=-1).mean())


def mouth_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """LMD of one frame: :func:`landmark_distance` over the mouth points (48-67)."""
    return landmark_distance(a, b, MOUTH)


def eye_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """LMD-E of one frame: :func:`landmark_distance` over the eye points (36-47)."""
    return landmark_distance(a, b, EYES)


class LMD(Metric):
    """Mouth (LMD) and eye (LMD-E) landmark distances with MediaPipe's Face Landmarker on both frames.

    Args:
        landmarker: the Face Landmarker ``.task`` bundle (configs: ``${paths.models_dir}/face_landmarker.task``).

    Summary keys: ``lmd``, ``lmd_e``, ``lmd_detected`` (share of frames with a face found on both
    sides) and, when the dataset's landmarks are exact, ``lmd_gt`` and ``lmd_e_gt``.
    """

    name = "lmd"

    def __init__(self, landmarker: str | Path) -> None:
        self.landmarker = landmarker
        self.detector = SharedFaceMesh(landmarker)  # detections shared with jitter and AUE
        self.values: dict[str, list[float]] = defaultdict(list)
        self.frames = 0
        self.against_truth = False

    def prepare(self, context: EvalContext) -> None:
        self.detector.prepare()
        self.against_truth = context.landmarks_exact

    def update(self, frame: EvalFrame) -> dict[str, float]:
        self.frames += 1
        out = {}
        pred = self.detector.landmarks68(frame.pred)
        target = self.detector.landmarks68(frame.target)
        if pred is not None and target is not None:
            out["lmd"], out["lmd_e"] = mouth_distance(pred, target), eye_distance(pred, target)
        if pred is not None and self.against_truth and frame.landmarks is not None:
            out["lmd_gt"], out["lmd_e_gt"] = mouth_distance(pred, frame.landmarks), eye_distance(pred, frame.landmarks)
        for key, value in out.items():
            self.values[key].append(value)
        return out

    def compute(self) -> dict[str, float]:
        if not self.values["lmd"]:
            raise MetricUnavailable(f"no face found by the landmark detector in any of {self.frames} frame pairs")
        out = {key: sum(v) / len(v) for key, v in self.values.items() if v}
        out["lmd_detected"] = len(self.values["lmd"]) / self.frames
        return out

    def reset(self) -> None:
        self.values.clear()
        self.frames = 0
        self.detector.forget()
