"""Region losses of LokiTalk (Sec. 3.4): region-weighted MSE (eq. 6), region regularisation of the
deformation fields (eq. 7) and attention regularisation of the signal-region cross-attention (eq. 8-9).

The regions are the per-ray flags of a training ray batch (``talker.data.landmarks.RAY_REGIONS``:
``face``, ``mouth``, ``eyes``, ``torso``, ...): ``rays[name][r]`` says whether ray r's pixel lies in
the region. The paper's masks are per pixel; a per-point value (a deformation's magnitude, an attention
score) becomes a per-pixel one by compositing it with the render's weights, as colour is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from talker.losses.photometric import PhotometricLoss

if TYPE_CHECKING:  # the conditioning strategies import these losses; the renderer imports the fields
    from talker.conditioning.base import RenderedRays
    from talker.rendering.renderer import RenderOutput


def region_flag(regions: Mapping[str, Tensor], name: str, owner: str) -> Tensor:
    """``[R]`` bool: the batch's flag ``name``, or a one-line error naming the flags there are."""
    if name not in regions:
        raise KeyError(
            f"{owner} reads the ray region {name!r}, but the ray batch has only {sorted(regions)} "
            "(talker.data.landmarks.RAY_REGIONS names the flags)"
        )
    return regions[name].to(torch.bool)


def ray_weights(regions: Mapping[str, Tensor], weights: Mapping[str, float], like: Tensor) -> Tensor:
    """``[R]`` weight of each ray (dtype and device of ``like [R]``): the largest weight of the regions
    it lies in, 1 outside them all.

    Example:
        >>> flags = {"eyes": torch.tensor([True, False, True]), "mouth": torch.tensor([False, True, True])}
        >>> ray_weights(flags, {"eyes": 4.0, "mouth": 2.0}, torch.zeros(3)).tolist()
        [4.0, 2.0, 4.0]
        >>> ray_weights(flags, {"eyes": 0.5}, torch.zeros(3)).tolist()  # a region may be weighted down
        [0.5, 1.0, 0.5]
    """
    best = torch.zeros_like(like)  # weights are > 0: 0 marks a ray in none of the regions
    for name, weight in weights.items():
        inside = region_flag(regions, name, "RegionWeightedMSE").to(like.device)
        best = torch.where(inside, best.clamp_min(float(weight)), best)
    return torch.where(best > 0, best, torch.ones_like(best))


class RegionWeightedMSE(PhotometricLoss):
    """LokiTalk eq. 6, ``sum_i w_i ||C_i - C*_i||^2`` over the rays, as a mean: ``mean_r(w_r e_r)`` with
    ``e_r`` the ray's mean squared colour error and ``w_r`` from :func:`ray_weights` (1 everywhere is
    plain MSE). The paper weights the slow-to-converge, strongly deforming eyes and mouth up.

    Args:
        weights: region flag -> weight of its rays (the paper gives no values; configs/system/lokitalk.yaml
            says which it uses).
    """

    def __init__(self, weights: Mapping[str, float]) -> None:
        super().__init__()
        if any(w <= 0 for w in weights.values()):
            raise ValueError(f"model.stages.head.photometric.weights={dict(weights)}: every weight must be > 0")
        self.weights = dict(weights)

    def __call__(
        self, out: RenderOutput, target: Tensor, progress: float, regions: Mapping[str, Tensor] | None = None
    ) -> Tensor:
        error = ((out.rgb - target) ** 2).mean(dim=-1)
        w = ray_weights(regions or {}, self.weights, error.detach())
        loss = (w * error).mean()
        self.terms = {"rgb_region_weighted": loss.detach()}
        return loss


def composited(rays: RenderedRays, values: Tensor) -> Tensor:
    """``[R]``: a per-sample value ``[M]`` or ``[M, C]`` (its L2 norm over C) composited along each ray
    with the render's weights, ``sum_i w_i v_i``: the value's image, as colour is rendered."""
    if values.dim() > 1:
        values = values.norm(dim=-1)
    per_sample = rays.points("weights") * values
    return per_sample.new_zeros(rays.num_rays).index_add(0, rays.point_rays(), per_sample)


def outside_region(rays: RenderedRays, value: str, region: str, owner: str) -> Tensor:
    """``mean_r value_r (1 - m_r)``: the composited point value ``value`` on the rays outside ``region``,
    averaged over all the rays (the paper sums over pixels; a mean keeps the weight independent of the
    rays per batch)."""
    inside = region_flag(rays.rays, region, owner)
    return (composited(rays, rays.points(value)) * (~inside).to(rays.weights.dtype)).mean()


def region_regularization(rays: RenderedRays, deformations: Mapping[str, str]) -> Tensor:
    """LokiTalk eq. 7: ``sum_pairs mean_r ||dx||_r (1 - w_region,r)``, each deformation's composited
    magnitude penalised outside its region; ``deformations`` maps a per-point value (``dx_face``) to
    the region it may move (``face``)."""
    terms = [outside_region(rays, value, region, "the region regulariser") for value, region in deformations.items()]
    return torch.stack(terms).sum()


def attention_regularization(rays: RenderedRays, scores: Mapping[str, str]) -> Tensor:
    """LokiTalk eq. 8-9: ``L_att = sum_s mean_r beta_s,r (1 - m_s,r)``, each signal's composited
    attention score penalised outside the region it drives; ``scores`` maps a per-point score
    (``attention_eye``) to that region (``eyes``)."""
    terms = [outside_region(rays, value, region, "the attention regulariser") for value, region in scores.items()]
    return torch.stack(terms).sum()


__all__ = [
    "RegionWeightedMSE",
    "attention_regularization",
    "composited",
    "outside_region",
    "ray_weights",
    "region_regularization",
]
