"""Facial landmarks of an image in the 68-point scheme, from MediaPipe's Face Landmarker.

MediaPipe predicts a 478-point mesh; ``MESH_TO_68`` picks the mesh vertex that corresponds to each
point of the iBUG 68-point scheme (the correspondence GeneFace++ uses in
data_gen/utils/mp_feature_extractors/face_landmarker.py). The Face Landmarker needs its ``.task``
bundle (face detector + mesh + blendshape models), which is not in the mediapipe wheel.

Installation: ``pip install --no-deps mediapipe==0.10.21`` plus opencv-python-headless and
matplotlib (``make install`` does this; see README). mediapipe 0.10.21 calls protobuf's
``MessageFactory.GetPrototype``, which protobuf >= 5 removed; :func:`_import_mediapipe` restores
it as an alias of ``GetMessageClass`` before mediapipe is imported.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from talker.metrics.base import MetricUnavailable

# 68-point index -> MediaPipe mesh vertex: jaw (17), brows (10), nose (9), eyes (12), lips (20).
MESH_TO_68 = (
    [127, 234, 93, 132, 58, 136, 150, 176, 152, 400, 379, 365, 288, 361, 323, 454, 356]
    + [70, 63, 105, 66, 107, 336, 296, 334, 293, 300]
    + [168, 197, 5, 4, 75, 97, 2, 326, 305]
    + [33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380]
    + [61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91, 78, 81, 13, 311, 308, 402, 14, 178]
)
TASK_URL = "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/latest/face_landmarker.task"


def _import_mediapipe():
    try:
        from google.protobuf import message_factory

        if not hasattr(message_factory.MessageFactory, "GetPrototype"):
            message_factory.MessageFactory.GetPrototype = lambda self, descriptor: message_factory.GetMessageClass(descriptor)
        import mediapipe
        from mediapipe.tasks import python as tasks
        from mediapipe.tasks.python import vision
    except ImportError as exc:
        raise MetricUnavailable(
            f"mediapipe does not import ({exc}); install it with `pip install --no-deps mediapipe==0.10.21` "
            "and opencv-python-headless, matplotlib (make install does)"
        ) from exc
    return mediapipe, tasks, vision


class FaceLandmarks68:
    """``detect(image [H, W, 3] in [0, 1] or uint8) -> [68, 2]`` pixel landmarks (x, y), or None if no face.

    Pixel convention: the centre of pixel (i, j) is at (j, i), as in the dataset's ``.lms`` files.
    Raises :class:`MetricUnavailable` (naming the file) when mediapipe or the ``.task`` bundle is missing.
    """

    def __init__(self, task: str | Path) -> None:
        task = Path(task).expanduser()
        if not task.is_file():
            raise MetricUnavailable(f"face landmarker bundle missing: {task} (download {TASK_URL}, or set its path)")
        self._mp, tasks, vision = _import_mediapipe()
        options = vision.FaceLandmarkerOptions(
            base_options=tasks.BaseOptions(model_asset_path=str(task)),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=1,
        )
        try:
            self._landmarker = vision.FaceLandmarker.create_from_options(options)
        except (RuntimeError, ValueError, TypeError) as exc:
            raise MetricUnavailable(f"face landmarker {task} does not load: {exc}") from exc

    def detect(self, image: torch.Tensor | np.ndarray) -> torch.Tensor | None:
        if isinstance(image, torch.Tensor):
            image = image.detach().cpu().numpy()
        if image.dtype != np.uint8:
            image = np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)
        h, w = image.shape[:2]
        result = self._landmarker.detect(self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(image)))
        if not result.face_landmarks:
            return None
        mesh = result.face_landmarks[0]
        points = np.array([[mesh[i].x * w - 0.5, mesh[i].y * h - 0.5] for i in MESH_TO_68], dtype=np.float32)
        return torch.from_numpy(points)

    def close(self) -> None:
        self._landmarker.close()
