"""The per-ray penalty of RAD-NeRF's ambient loss and ER-NeRF's audio-attention loss.

Both reference codes sum a per-point value over every sample their ray marcher visits, *unweighted*
by the compositing weights, until the ray's transmittance falls below ``1e-4`` (their compositing
kernel adds the value, then stops once ``T`` is under the threshold), and average the per-ray sums
over all the rays of the batch, with the rays of an exempt image region counting as zero.
"""

from __future__ import annotations

import torch
from torch import Tensor

from talker.conditioning.base import RenderedRays

# instant-NGP's early ray termination: its kernels stop marching a ray below this transmittance.
TRANSMITTANCE_THRESHOLD = 1e-4


def ray_sum_penalty(
    values: Tensor, transmittance: Tensor, ray_index: Tensor, num_rays: int, exempt: Tensor,
    threshold: float = TRANSMITTANCE_THRESHOLD,
) -> Tensor:
    """``(1 / R) * sum_r [not exempt_r] * sum_{i in r, T_i >= threshold} v_i``.

    Args:
        values: ``[M]`` per-sample value (e.g. ``|ambient|_1``), one per evaluated sample.
        transmittance: ``[M]`` light reaching each sample (``T_i``, before the sample's own alpha).
        ray_index: ``[M]`` the ray of each sample.
        num_rays: ``R``, the rays of the batch (rays with no sample count as zero).
        exempt: ``[R]`` rays whose samples are not penalised.
        threshold: samples reached by less light than this are not counted (the march stopped).

    Example:
        >>> values = torch.tensor([1.0, 2.0, 4.0, 8.0])
        >>> light = torch.tensor([1.0, 1e-5, 1.0, 0.5])       # ray 0's second sample is past the stop
        >>> rays = torch.tensor([0, 0, 1, 2])
        >>> exempt = torch.tensor([False, True, False])       # ray 1 lies in the exempt region
        >>> ray_sum_penalty(values, light, rays, 3, exempt).item()  # (1 + 8) / 3
        3.0
    """
    counted = (transmittance.detach() >= threshold) & ~exempt[ray_index]
    return (values * counted.to(values.dtype)).sum() / max(num_rays, 1)


def rendered_ray_sum(rays: RenderedRays, values: Tensor, exempt: str) -> Tensor:
    """:func:`ray_sum_penalty` of a training render's per-sample ``values [M]`` (evaluation order),
    exempting the rays whose region flag ``rays.rays[exempt]`` is set."""
    if exempt not in rays.rays:
        raise KeyError(
            f"the regulariser exempts the rays flagged {exempt!r}, but the ray batch has only {sorted(rays.rays)} "
            "(talker.data.landmarks.RAY_REGIONS names the flags)"
        )
    return ray_sum_penalty(
        values, rays.points("transmittance"), rays.point_rays(), rays.num_rays, rays.rays[exempt].to(torch.bool)
    )
