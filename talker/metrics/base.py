"""What every metric sees, and the face / mouth regions derived from the 68 landmarks."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import Tensor

from talker.data.landmarks import MOUTH, landmark_box


@dataclass
class EvalFrame:
    """One scored frame: prediction and ground truth ``[H, W, 3]`` in [0, 1], landmarks ``[68, 2]`` (x, y)."""

    frame_id: int
    pred: Tensor
    target: Tensor
    landmarks: Tensor | None = None


def regions(frame: EvalFrame) -> dict[str, tuple[int, int, int, int] | None]:
    """Named crops of a frame: ``""`` (full frame), ``"face"`` and ``"mouth"`` (from landmarks)."""
    h, w = frame.target.shape[:2]
    out: dict[str, tuple[int, int, int, int] | None] = {"": (0, h, 0, w)}
    if frame.landmarks is not None:
        out["face"] = landmark_box(frame.landmarks, h, w, pad=0.1)
        out["mouth"] = landmark_box(frame.landmarks[MOUTH], h, w, pad=0.25)
    return out


def crop(image: Tensor, box: tuple[int, int, int, int]) -> Tensor:
    y0, y1, x0, x1 = box
    return image[y0:y1, x0:x1]


class Metric(ABC):
    """A metric over a sequence of frames: ``update`` per frame, ``compute`` at the end.

    ``update`` returns the frame's own values (written to the per-frame CSV), possibly empty for
    set-level metrics such as FID. Names are suffixed by region: ``psnr``, ``psnr_face``, ...
    """

    name: str

    @abstractmethod
    def update(self, frame: EvalFrame) -> dict[str, float]: ...

    @abstractmethod
    def compute(self) -> dict[str, float]: ...

    def reset(self) -> None:
        pass


def region_key(name: str, region: str) -> str:
    return f"{name}_{region}" if region else name


def as_float(value: Tensor | float) -> float:
    return float(value.item()) if isinstance(value, torch.Tensor) else float(value)
