"""The metrics' face landmark detector: :mod:`talker.data.face_landmarker`, failing as a metric does.

A missing mediapipe or ``.task`` bundle makes a metric unavailable (listed with the file it needs),
never a crash of the evaluation.
"""

from __future__ import annotations

from pathlib import Path

import torch

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


class SharedFaceMesh:
    """MediaPipe's mesh and blendshapes of an image, shared by LMD, the temporal metrics and AUE.

    One Face Landmarker per bundle file in the process, in IMAGE mode: every frame is detected on
    its own, so that a tracker's smoothing cannot hide a shaking render. The last few images asked
    for are remembered by identity (per bundle, across metrics), so the metrics scoring one frame
    detect it once between them.
    """

    _landmarkers: dict[str, face_landmarker.FaceLandmarker] = {}
    _recent: dict[str, list[tuple[object, face_landmarker.FaceMesh | None]]] = {}
    MEMORY = 4  # images remembered per bundle: a frame's render and ground truth, and the previous frame's

    def __init__(self, task: str | Path) -> None:
        self.task = str(Path(task).expanduser())

    def _landmarker(self) -> face_landmarker.FaceLandmarker:
        if self.task not in self._landmarkers:
            try:
                self._landmarkers[self.task] = face_landmarker.FaceLandmarker(self.task, blendshapes=True)
            except LandmarkerUnavailable as exc:
                raise MetricUnavailable(str(exc)) from exc
        return self._landmarkers[self.task]

    def prepare(self) -> None:
        """Load the landmarker now (raises :class:`MetricUnavailable` naming the missing file)."""
        self._landmarker()

    def mesh(self, image) -> face_landmarker.FaceMesh | None:
        recent = self._recent.setdefault(self.task, [])
        for seen, mesh in recent:
            if seen is image:
                return mesh
        mesh = self._landmarker().detect(image)
        # Holding the image keeps its identity from being reused by another object while remembered.
        self._recent[self.task] = [(image, mesh), *recent[: self.MEMORY - 1]]
        return mesh

    def landmarks68(self, image) -> torch.Tensor | None:
        """``[68, 2]`` pixel landmarks (the dataset's convention), or None without a face."""
        mesh = self.mesh(image)
        return None if mesh is None else face_landmarker.landmarks68(mesh)

    def forget(self) -> None:
        self._recent.pop(self.task, None)
