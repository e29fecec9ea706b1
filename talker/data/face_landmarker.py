"""MediaPipe's Face Landmarker: a 478-point 3D face mesh per image, and its 68-point (iBUG) subset.

Shared by the preprocessing (tracking a video) and the metrics (LMD, the Sync face box).
``MESH_TO_68`` picks the mesh vertex that corresponds to each point of the iBUG 68-point scheme
(the correspondence GeneFace++ uses in data_gen/utils/mp_feature_extractors/face_landmarker.py).
The Face Landmarker needs its ``.task`` bundle (face detector + mesh + blendshape models), which is
not in the mediapipe wheel: :data:`talker.weights.FACE_LANDMARKER` downloads it on first use into
the path asked for (``${paths.models_dir}/face_landmarker.task`` by default).

Installation: ``pip install --no-deps mediapipe==0.10.21`` plus opencv-python-headless and
matplotlib (``make install`` does this; see README). mediapipe 0.10.21 calls protobuf's
``MessageFactory.GetPrototype``, which protobuf >= 5 removed; :func:`import_mediapipe` restores
it as an alias of ``GetMessageClass`` before mediapipe is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from talker.errors import TalkerError
from talker.weights import FACE_LANDMARKER, WeightsUnavailable

# 68-point index -> MediaPipe mesh vertex: jaw (17), brows (10), nose (9), eyes (12), lips (20).
MESH_TO_68 = (
    [127, 234, 93, 132, 58, 136, 150, 176, 152, 400, 379, 365, 288, 361, 323, 454, 356]
    + [70, 63, 105, 66, 107, 336, 296, 334, 293, 300]
    + [168, 197, 5, 4, 75, 97, 2, 326, 305]
    + [33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380]
    + [61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91, 78, 81, 13, 311, 308, 402, 14, 178]
)
TASK_URL = FACE_LANDMARKER.url


class LandmarkerUnavailable(TalkerError, RuntimeError):
    """mediapipe or the ``.task`` bundle is missing or does not load; the message names what to get."""


def import_mediapipe():
    try:
        from google.protobuf import message_factory

        if not hasattr(message_factory.MessageFactory, "GetPrototype"):
            message_factory.MessageFactory.GetPrototype = lambda self, descriptor: message_factory.GetMessageClass(descriptor)
        import mediapipe
        from mediapipe.tasks import python as tasks
        from mediapipe.tasks.python import vision
    except ImportError as exc:
        raise LandmarkerUnavailable(
            f"mediapipe does not import ({exc}); install it with `pip install --no-deps mediapipe==0.10.21` "
            "and opencv-python-headless, matplotlib (make install does)"
        ) from exc
    return mediapipe, tasks, vision


@dataclass
class FaceMesh:
    """One detected face.

    Attributes:
        points: ``[478, 3]`` float32; x, y in continuous pixel coordinates (pixel ``(i, j)`` covers
            ``[j, j+1) x [i, i+1)``), z MediaPipe's relative depth scaled by the image width (pixels,
            smaller is nearer the camera).
        blendshapes: MediaPipe's 52 blendshape scores by name (empty unless requested).
    """

    points: np.ndarray
    blendshapes: dict[str, float]


class FaceLandmarker:
    """``detect(image [H, W, 3] uint8 or float in [0, 1], timestamp_ms=None) -> FaceMesh | None``.

    Args:
        task: the ``face_landmarker.task`` bundle; downloaded to this path first when it is missing
            and its file name is the bundle's (unless offline).
        video: MediaPipe's VIDEO running mode (tracks between frames; ``detect`` then needs
            increasing ``timestamp_ms``); IMAGE mode otherwise.
        blendshapes: also predict the 52 blendshape scores (eyeBlinkLeft, jawOpen, ...).
    Raises :class:`LandmarkerUnavailable` (naming the file and where to get it) when mediapipe or the
    bundle is missing.
    """

    def __init__(self, task: str | Path, video: bool = False, blendshapes: bool = False) -> None:
        task = Path(task).expanduser()
        if not task.is_file() and task.name != FACE_LANDMARKER.file_name:  # a user's own file: never downloaded over
            raise LandmarkerUnavailable(f"face landmarker bundle missing: {task} (the published bundle is {TASK_URL})")
        try:
            FACE_LANDMARKER.ensure(task)
        except WeightsUnavailable as exc:
            raise LandmarkerUnavailable(str(exc)) from exc
        self._mp, tasks, vision = import_mediapipe()
        self.video = video
        options = vision.FaceLandmarkerOptions(
            base_options=tasks.BaseOptions(model_asset_path=str(task)),
            running_mode=vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE,
            num_faces=1,
            output_face_blendshapes=blendshapes,
        )
        try:
            self._landmarker = vision.FaceLandmarker.create_from_options(options)
        except (RuntimeError, ValueError, TypeError) as exc:
            raise LandmarkerUnavailable(f"face landmarker {task} does not load: {exc}") from exc

    def detect(self, image: torch.Tensor | np.ndarray, timestamp_ms: int | None = None) -> FaceMesh | None:
        if isinstance(image, torch.Tensor):
            image = image.detach().cpu().numpy()
        if image.dtype != np.uint8:
            image = np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)
        h, w = image.shape[:2]
        mp_image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
        if self.video:
            result = self._landmarker.detect_for_video(mp_image, int(timestamp_ms))
        else:
            result = self._landmarker.detect(mp_image)
        if not result.face_landmarks:
            return None
        mesh = result.face_landmarks[0]
        points = np.array([[p.x * w, p.y * h, p.z * w] for p in mesh], dtype=np.float32)
        scores = {c.category_name: float(c.score) for c in result.face_blendshapes[0]} if result.face_blendshapes else {}
        return FaceMesh(points, scores)

    def close(self) -> None:
        self._landmarker.close()


def landmarks68(mesh: FaceMesh) -> torch.Tensor:
    """``[68, 2]`` pixel landmarks (x, y) of a mesh, with pixel centres at integer coordinates."""
    return torch.from_numpy(mesh.points[MESH_TO_68, :2] - 0.5)


class FaceLandmarks68:
    """``detect(image [H, W, 3] in [0, 1] or uint8) -> [68, 2]`` pixel landmarks (x, y), or None if no face.

    Pixel convention: the centre of pixel (i, j) is at (j, i), as in the dataset's ``.lms`` files.
    """

    def __init__(self, task: str | Path) -> None:
        self._landmarker = FaceLandmarker(task)

    def detect(self, image: torch.Tensor | np.ndarray) -> torch.Tensor | None:
        mesh = self._landmarker.detect(image)
        return None if mesh is None else landmarks68(mesh)

    def close(self) -> None:
        self._landmarker.close()
