"""ER-NeRF's uncertainty-weighted colour loss (its public code's ``unc_loss``; used in the head stage only)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from talker.baselines.er_nerf.field import UNCERTAINTY
from talker.losses.photometric import PhotometricLoss
from talker.rendering.renderer import RenderOutput


class UncertaintyWeightedMSE(PhotometricLoss):
    """Per-ray squared error reweighted towards rays the field is uncertain about, plus an NLL that
    teaches the field its uncertainty.

    With ``e_r`` the ray's mean squared colour error, ``u_r >= 0`` its rendered uncertainty
    (``RenderOutput.extras["uncertainty"]``), ``R`` rays and ``s`` the head-stage progress in [0, 1]::

        w_r  = alpha + (1 - alpha) * clamp((1 - s) + s * R * softmax(u)_r, 0, max_weight)   (no gradient)
        loss = mean_r(w_r e_r) + nll_weight * s * mean_r(|c_r - c*_r| / (2 (1 + u_r)^2) + log(1 + u_r)^2 / 2)

    so training starts as plain MSE and moves weight to uncertain (hard) rays as it goes.

    Not reproduced: ER-NeRF's face-masked terms (the NLL restricted to the face and a 1e-3 pull of the
    uncertainty to zero off the face), because talker's ray batches carry no face-parsing mask; on
    rays that miss the head the rendered uncertainty is near zero anyway.

    Args:
        alpha: share of the weight every ray keeps (ER-NeRF: 0.2).
        max_weight: clamp of the reweighting (10).
        nll_weight: weight of the uncertainty NLL at the end of the head stage (1).
    """

    def __init__(self, alpha: float = 0.2, max_weight: float = 10.0, nll_weight: float = 1.0) -> None:
        super().__init__()
        self.alpha, self.max_weight, self.nll_weight = alpha, max_weight, nll_weight

    def __call__(
        self, out: RenderOutput, target: Tensor, progress: float, regions: Mapping[str, Tensor] | None = None
    ) -> Tensor:
        if UNCERTAINTY not in out.extras:
            raise KeyError(
                f"UncertaintyWeightedMSE needs the field's per-ray '{UNCERTAINTY}' (ERNeRFField gives it in "
                f"training); the render has {sorted(out.extras)}: model.stages.head.photometric and field do not match"
            )
        u = out.extras[UNCERTAINTY]
        error = ((out.rgb - target) ** 2).mean(dim=-1)
        s = float(min(max(progress, 0.0), 1.0))
        share = torch.softmax(u.detach(), dim=0) * u.shape[0]
        weight = self.alpha + (1 - self.alpha) * ((1 - s) + s * share).clamp(0, self.max_weight)
        weighted = (weight * error).mean()
        beta = 1 + u
        distance = (out.rgb - target).norm(dim=-1).detach()
        nll = (distance / (2 * beta**2) + torch.log(beta) ** 2 / 2).mean()
        self.terms = {"rgb_weighted": weighted.detach(), "uncertainty_nll": nll.detach()}
        return weighted + self.nll_weight * s * nll
