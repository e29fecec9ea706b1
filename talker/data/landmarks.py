"""The 68-point facial landmark scheme (iBUG 300-W) used by AD-NeRF, RAD-NeRF and GeneFace."""

from __future__ import annotations

import math

from torch import Tensor

from talker.fields.inputs import eye_aspect_ratio

JAW = slice(0, 17)
BROWS = slice(17, 27)
NOSE = slice(27, 36)
NOSTRILS = slice(31, 36)  # the lower nose, nostril to nostril
EYE_RIGHT = slice(36, 42)  # the subject's right eye: image left
EYE_LEFT = slice(42, 48)
EYES = slice(36, 48)  # both eyes: LMD-E's points, the eyes box
LIPS_OUTER = slice(48, 60)
LIPS_INNER = slice(60, 68)
MOUTH = slice(48, 68)


def landmark_box(landmarks: Tensor, height: int, width: int, pad: float = 0.25) -> tuple[int, int, int, int]:
    """Square box ``(y0, y1, x0, x1)`` around ``[K, 2]`` (x, y) landmarks, grown by ``pad`` per side, clipped."""
    lo = landmarks.min(dim=0).values
    hi = landmarks.max(dim=0).values
    cx, cy = float(lo[0] + hi[0]) / 2, float(lo[1] + hi[1]) / 2
    half = float((hi - lo).max()) / 2 * (1 + 2 * pad) + 1
    y0, y1 = max(0, math.floor(cy - half)), min(height, math.ceil(cy + half) + 1)
    x0, x1 = max(0, math.floor(cx - half)), min(width, math.ceil(cx + half) + 1)
    return y0, y1, x0, x1


def face_box(landmarks: Tensor, height: int, width: int) -> tuple[int, int, int, int]:
    """The face region ``(y0, y1, x0, x1)`` of 68 landmarks: the one training samples rays in and the
    evaluator scores as ``*_face``, so that both mean the same pixels."""
    return landmark_box(landmarks, height, width, pad=0.1)


def mouth_box(landmarks: Tensor, height: int, width: int) -> tuple[int, int, int, int]:
    """The mouth region of 68 landmarks (their 20 lip points): sampled in training, scored as ``*_mouth``."""
    return landmark_box(landmarks[MOUTH], height, width, pad=0.25)


def eyes_box(landmarks: Tensor, height: int, width: int) -> tuple[int, int, int, int]:
    """Both eyes (points 36-47), grown by half their extent per side: where LokiTalk lets the eye ratio
    act and weights the colour loss up."""
    return landmark_box(landmarks[EYES], height, width, pad=0.5)


def eye_strip(landmarks: Tensor, height: int, width: int, pad: int = 3) -> tuple[int, int, int, int]:
    """The lids: the bounding box of points 36-47 grown by ``pad`` pixels per side, clipped. Unlike
    :func:`eyes_box` (a square holding the brows and the nose as well), it holds the pixels a blink
    changes and little else: where ``data.eyes_fraction`` draws rays."""
    eyes = landmarks[EYES]
    y0, y1 = math.floor(float(eyes[:, 1].min())) - pad, math.floor(float(eyes[:, 1].max())) + pad + 1
    x0, x1 = math.floor(float(eyes[:, 0].min())) - pad, math.floor(float(eyes[:, 0].max())) + pad + 1
    return max(0, y0), min(height, y1), max(0, x0), min(width, x1)


def torso_box(landmarks: Tensor, height: int, width: int) -> tuple[int, int, int, int]:
    """Rows from the chin (the lowest landmark) to the bottom of the frame, every column: a box standing in
    for the parsing's neck-and-torso mask, where LokiTalk lets the head pose deform the portrait."""
    return min(height, math.floor(float(landmarks[:, 1].max()))), height, 0, width


def lower_face_box(landmarks: Tensor, height: int, width: int) -> tuple[int, int, int, int]:
    """RAD-NeRF's face rectangle ``(y0, y1, x0, x1)``: rows from the nostrils (points 31-35) down to
    the lowest landmark (the chin), columns across all 68, truncated to whole pixels as its data
    provider does. The audio may move what is rendered here; its ambient regulariser exempts it."""
    return _extent(landmarks, height, width, top=float(landmarks[NOSTRILS, 1].min()))


def landmark_extent(landmarks: Tensor, height: int, width: int) -> tuple[int, int, int, int]:
    """The unpadded bounding box ``(y0, y1, x0, x1)`` of the 68 landmarks, truncated to whole pixels:
    ER-NeRF's face rectangle (its audio-attention regulariser exempts it)."""
    return _extent(landmarks, height, width, top=float(landmarks[:, 1].min()))


def _extent(landmarks: Tensor, height: int, width: int, top: float) -> tuple[int, int, int, int]:
    """Rows ``top .. max y``, columns ``min x .. max x`` of ``[K, 2]`` (x, y) landmarks (ends exclusive)."""
    y0, y1 = math.floor(top), math.floor(float(landmarks[:, 1].max()))
    x0, x1 = math.floor(float(landmarks[:, 0].min())), math.floor(float(landmarks[:, 0].max()))
    return max(0, y0), min(height, y1), max(0, x0), min(width, x1)


# Per-ray region flags a training ray batch carries (``RayBatches``: ``batch[name][r]`` says whether
# ray r's pixel lies in the region), read by regularisers that exempt a region (RenderedRays.rays).
RAY_REGIONS = {
    "face": face_box,
    "lower_face": lower_face_box,
    "landmark_extent": landmark_extent,
    "mouth": mouth_box,
    "eyes": eyes_box,
    "eye_strip": eye_strip,
    "torso": torso_box,
}


BLINK = 0.9  # a frame blinks when its eye ratio is below this share of its clip's median


def blinking(landmarks: Tensor) -> Tensor:
    """``[N]`` bool: which of ``[N, 68, 2 or 3]`` frames blink, their eye aspect ratio below
    :data:`BLINK` x the frames' median (the synthetic clip: 12 of its 225 training frames, 3 blinks)."""
    ratios = eye_aspect_ratio(landmarks.float())
    return ratios < BLINK * ratios.median()


def mouth_opening(landmarks: Tensor) -> float:
    """Inner-lip gap: mean distance between the upper (61-63) and lower (67-65) inner-lip points."""
    return float((landmarks[[67, 66, 65]] - landmarks[[61, 62, 63]]).norm(dim=-1).mean())
