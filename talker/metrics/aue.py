"""Action-unit error (AUE, as Talk3D reports it) with MediaPipe's blendshapes as the action units.

Talk3D (and ER-NeRF before it) measure AUE with OpenFace's action-unit intensities (0-5), which need
OpenFace's C++ toolkit. talker uses MediaPipe's 52 face blendshapes instead, a different and
documented proxy: scores in [0, 1] from the Face Landmarker bundle that LMD and Sync already load.
The numbers are therefore not comparable with the papers' AUE, only between talker's runs.

Per frame with a face found on both the render and the ground truth: the mean absolute difference
of the blendshape scores over a set; the sequence value is the mean over such frames. Sets: ``aue``
every expression blendshape (gaze ``eyeLook*`` and ``_neutral`` left out), ``aue_lower`` jaw, mouth
and cheek puff, ``aue_upper`` brows, eyes (blink, squint, wide), cheek squint and nose sneer
(ER-NeRF's AUE-L / AUE-U split). The ground truth's own AUE is 0 by definition.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from talker.metrics.base import EvalContext, EvalFrame, FrameMeanMetric, MetricUnavailable
from talker.metrics.detector import SharedFaceMesh

LOWER_PREFIXES = ("jaw", "mouth", "cheekPuff")
UPPER_PREFIXES = ("brow", "eyeBlink", "eyeSquint", "eyeWide", "cheekSquint", "noseSneer")


def blendshape_sets(names: list[str]) -> dict[str, list[str]]:
    """``aue`` / ``aue_lower`` / ``aue_upper`` -> the blendshape names each averages over."""
    lower = sorted(n for n in names if n.startswith(LOWER_PREFIXES))
    upper = sorted(n for n in names if n.startswith(UPPER_PREFIXES))
    return {"aue": lower + upper, "aue_lower": lower, "aue_upper": upper}


class AUE(FrameMeanMetric):
    """Blendshape error of the render against the ground truth (see the module docstring).

    Args:
        landmarker: MediaPipe's ``face_landmarker.task`` (it holds the blendshape model).

    Summary keys: ``aue``, ``aue_lower``, ``aue_upper`` and ``aue_detected`` (share of frame pairs
    with a face on both sides).
    """

    name = "aue"

    def __init__(self, landmarker: str | Path) -> None:
        super().__init__()
        self.detector = SharedFaceMesh(landmarker)
        self.frames = 0

    def prepare(self, context: EvalContext) -> None:
        self.detector.prepare()

    def update(self, frame: EvalFrame) -> dict[str, float]:
        self.frames += 1
        pred, target = self.detector.mesh(frame.pred), self.detector.mesh(frame.target)
        if pred is None or target is None or not pred.blendshapes or not target.blendshapes:
            return {}
        out = {}
        for key, names in blendshape_sets(sorted(target.blendshapes)).items():
            out[key] = float(np.mean([abs(pred.blendshapes[n] - target.blendshapes[n]) for n in names]))
            self.values[key].append(out[key])
        return out

    def compute(self) -> dict[str, float]:
        if not self.values["aue"]:
            raise MetricUnavailable(f"no face found on both sides of any of {self.frames} frame pairs")
        return {**super().compute(), "aue_detected": len(self.values["aue"]) / self.frames}

    def reset(self) -> None:
        super().reset()
        self.frames = 0
        if hasattr(self, "detector"):
            self.detector.forget()
