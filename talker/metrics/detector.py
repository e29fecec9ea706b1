"""The metrics' face landmark detector: :mod:`talker.data.face_landmarker`, failing as a metric does.

A missing mediapipe or ``.task`` bundle makes a metric unavailable (listed with the file it needs),
never a crash of the evaluation.
"""

from __future__ import annotations

from pathlib import Path

from talker.data import face_landmarker
from talker.data.face_landmarker import MESH_TO_68, TASK_URL, LandmarkerUnavailable
from talker.metrics.base import MetricUnavailable

__all__ = ["MESH_TO_68", "TASK_URL", "FaceLandmarks68"]


class FaceLandmarks68(face_landmarker.FaceLandmarks68):
    """68 pixel landmarks of an image (see :class:`talker.data.face_landmarker.FaceLandmarks68`);
    raises :class:`MetricUnavailable` naming the file when mediapipe or the bundle is missing."""

    def __init__(self, task: str | Path) -> None:
        try:
            super().__init__(task)
        except LandmarkerUnavailable as exc:
            raise MetricUnavailable(str(exc)) from exc
