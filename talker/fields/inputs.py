"""Per-frame inputs a field declares (RAD-NeRF's eye-blink scalar and per-frame individual codes).

These are not conditioning strategies (the ablation axis): they are fixed parts of a field's
design that read the frame's data. A field lists them per network (``density_inputs``,
``color_inputs``); each contributes a ``[dim]`` vector that the network concatenates to every
point's features. The renderer never sees them: callers bind the frame as they bind the
conditioning, ``functools.partial(field, cond=cond, frame=frame)``.

``frame`` is the mapping of a frame's inputs: the conditioning inputs (``batch["cond"]``, e.g.
``landmarks [window, 68, 3]``) plus ``index`` (the frame's position in the training split) for
training frames only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import Tensor, nn

Frame = Mapping[str, Tensor | int]


class FrameInput(nn.Module, ABC):
    """A ``[dim]`` vector computed from one frame's inputs."""

    keys: ClassVar[tuple[str, ...]] = ()  # frame keys it requires
    # Whether it reads the frame's eye ratio through :func:`eye_ratio` (so ``frame[EYE]`` replaces it;
    # the evaluator's eye condition gap swaps only that, ``talker.evaluation.condition_gap``).
    drives_eyes: ClassVar[bool] = False
    dim: int

    @abstractmethod
    def forward(self, frame: Frame) -> Tensor:
        """``frame -> [dim]``."""


def require(frame: Frame | None, key: str, owner: str) -> Tensor | int:
    if frame is None or key not in frame:
        available = sorted(frame) if frame is not None else []
        raise KeyError(f"{owner} needs frame['{key}'] (frame has {available})")
    return frame[key]


# The condition key that, when present, replaces the eye ratio a frame's landmarks give (a test-time
# caller's blink control; the eye condition gap puts another frame's ratio there).
EYE = "eye"

# 68-point scheme (0-based): each eye's corners and upper / lower lid points.
_EYES = ((36, 37, 38, 39, 40, 41), (42, 43, 44, 45, 46, 47))


def eye_aspect_ratio(landmarks: Tensor) -> Tensor:
    """Mean eye aspect ratio of both eyes (Soukupova & Cech, 2016) of ``[..., 68, 2 or 3]`` landmarks.

    ``EAR = (|p1 - p5| + |p2 - p4|) / (2 |p0 - p3|)`` per eye (p0, p3 the corners): about 0.3 for
    an open eye, 0 for a closed one, independent of scale and of rotation in the image plane.
    """
    ratios = []
    for p0, p1, p2, p3, p4, p5 in _EYES:
        vertical = (landmarks[..., p1, :2] - landmarks[..., p5, :2]).norm(dim=-1) + (
            landmarks[..., p2, :2] - landmarks[..., p4, :2]
        ).norm(dim=-1)
        horizontal = (landmarks[..., p0, :2] - landmarks[..., p3, :2]).norm(dim=-1)
        ratios.append(vertical / (2 * horizontal.clamp(min=1e-8)))
    return torch.stack(ratios).mean(dim=0)


def eye_ratio(frame: Mapping[str, Tensor | int], owner: str = "eye_ratio") -> Tensor:
    """``[1]``: the frame's eye signal, ``frame[EYE]`` when given, else the eye aspect ratio of its
    landmarks (the window's centre frame of ``[window, 68, 3]``). Every part that reads the eye ratio
    reads it here, so that one condition key replaces it for all of them."""
    if frame is not None and EYE in frame:
        return torch.as_tensor(frame[EYE], dtype=torch.float32).reshape(1)
    landmarks = require(frame, "landmarks", owner)
    if landmarks.dim() == 3:  # [window, 68, 3]: the window's centre frame
        landmarks = landmarks[landmarks.shape[0] // 2]
    return eye_aspect_ratio(landmarks.float()).reshape(1)


class EyeBlink(FrameInput):
    """RAD-NeRF's explicit eye control: one scalar, how open the eyes are.

    Measured from the frame's canonical (pose-free) landmarks, the centre frame of the landmark
    window, as the eye aspect ratio (RAD-NeRF uses the eyes' area share of the image; the aspect
    ratio does not change with head pose or distance). A test-time caller can override it by
    putting ``eye`` (a scalar) into the frame.
    """

    keys = ("landmarks",)
    drives_eyes = True
    dim = 1

    def forward(self, frame: Frame) -> Tensor:
        return eye_ratio(frame, type(self).__name__)


class IndividualCode(FrameInput):
    """RAD-NeRF's per-frame individual code: a learned ``[dim]`` vector per training frame.

    It absorbs what the driving signal cannot explain (lighting flicker, small tracking errors).
    Frames without ``index`` (held-out or novel-audio frames) use code ``default_index``, as
    RAD-NeRF does at test time.

    Args:
        num_codes: at least the number of training frames (RAD-NeRF: 10000).
        dim: code width (RAD-NeRF: 4 for the head, 8 for the torso).
    """

    keys = ()
    dim: int

    def __init__(self, num_codes: int = 10000, dim: int = 4, default_index: int = 0) -> None:
        super().__init__()
        self.dim = dim
        self.default_index = default_index
        self.codes = nn.Parameter(torch.randn(num_codes, dim) * 0.1)

    def forward(self, frame: Frame) -> Tensor:
        index = int(frame["index"]) if frame is not None and "index" in frame else self.default_index
        if not 0 <= index < self.codes.shape[0]:
            raise IndexError(
                f"IndividualCode has {self.codes.shape[0]} codes but got frame index {index}; raise its num_codes"
            )
        return self.codes[index]
