"""Peak signal-to-noise ratio on the full frame and on the face / mouth crops."""

from __future__ import annotations

import torch

from talker.metrics.base import EvalFrame, FrameMeanMetric, as_float, crop, region_key, regions


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``-10 log10(MSE)`` for images in [0, 1]."""
    mse = torch.mean((pred.clamp(0, 1).double() - target.double()) ** 2)
    return -10 * torch.log10(mse.clamp(min=1e-12))


class PSNR(FrameMeanMetric):
    """Mean over frames of per-frame PSNR (the convention of the talking-head papers)."""

    name = "psnr"

    def update(self, frame: EvalFrame) -> dict[str, float]:
        out = {}
        for region, box in regions(frame).items():
            key = region_key(self.name, region)
            out[key] = as_float(psnr(crop(frame.pred, box), crop(frame.target, box)))
            self.values[key].append(out[key])
        return out
