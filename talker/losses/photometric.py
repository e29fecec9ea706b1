"""Photometric losses and the opacity regulariser of the head stage.

The head stage's colour loss is an injected :class:`PhotometricLoss` (``model.stages.head.photometric``):
R2-Talker, RAD-NeRF and GeneFace++ dagger use :class:`MSE`; ER-NeRF weights it by a rendered
uncertainty (``talker.baselines.er_nerf.UncertaintyWeightedMSE``), LokiTalk by image region
(``talker.losses.regions.RegionWeightedMSE``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:  # the renderer imports the fields, which import nothing from here
    from talker.rendering.renderer import RenderOutput


def mse(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared colour error (R2-Talker eq. 11, averaged over rays)."""
    return torch.mean((pred - target) ** 2)


def opacity_entropy(opacity: Tensor, eps: float = 1e-5) -> Tensor:
    """Binary entropy of per-ray opacity (RAD-NeRF): pushes rays to be either empty or opaque."""
    a = opacity.clamp(eps, 1 - eps)
    return torch.mean(-a * torch.log2(a) - (1 - a) * torch.log2(1 - a))


class PhotometricLoss(ABC):
    """Colour loss of a batch of rendered rays: ``(out, target [R, 3], progress) -> scalar``.

    ``progress`` is the share of the head stage done, in ``[0, 1]`` (losses that phase terms in read
    it). ``regions`` holds the batch's per-ray region flags (``name -> [R]``, from
    ``talker.data.landmarks.RAY_REGIONS``; LokiTalk's region-weighted MSE reads them). ``terms`` holds
    the named parts of the last call, for TensorBoard (``train/loss_<name>``).
    """

    def __init__(self) -> None:
        self.terms: dict[str, Tensor] = {}

    @abstractmethod
    def __call__(
        self, out: RenderOutput, target: Tensor, progress: float, regions: Mapping[str, Tensor] | None = None
    ) -> Tensor: ...


class MSE(PhotometricLoss):
    """Mean squared colour error over the rays (the default of every system but ER-NeRF and LokiTalk)."""

    def __call__(
        self, out: RenderOutput, target: Tensor, progress: float, regions: Mapping[str, Tensor] | None = None
    ) -> Tensor:
        self.terms = {}
        return mse(out.rgb, target)
