"""Deformation heat maps (LokiTalk, Fig. 5): how far a head's warp moves the points each pixel shows.

Per pixel and per offset the strategy's warp reports (``ConditioningStrategy.deformations``, e.g.
LokiTalk's ``dx_face`` and ``dx_torso``): ``sum_i w_i ||dx_i||`` over the ray's samples, with the
render's compositing weights ``w_i`` -- the offsets of the surface the pixel shows, as the paper's
``sum ||dx_face||`` maps. The per-point offsets come back from the render as every field extra does
(``RenderOutput.point_values``), so this renders the frame once more, uncompacted. Heads without a
warp have no maps. :class:`talker.callbacks.DeformationMaps` writes them at validation and fit end.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from talker.head.model import TalkingHead
from talker.rendering import render_rays


def composited_norms(weights: Tensor, point_values: Mapping[str, Tensor], names: tuple[str, ...]) -> dict[str, Tensor]:
    """``[R]`` per name: ``sum_i w_i ||v_i||`` of per-sample vectors ``[R, S, C]`` with weights ``[R, S]``."""
    return {name: (weights * point_values[name].norm(dim=-1)).sum(dim=1) for name in names}


@torch.no_grad()
def deformation_maps(head: TalkingHead, item: Mapping[str, Any], chunk: int = 4096) -> dict[str, Tensor]:
    """``{name: [H, W]}`` for each offset the head's strategy reports, of a ``Frames`` item rendered
    under its own condition; ``{}`` for a head without a warp."""
    names = head.conditioning.deformations
    if not names:
        return {}
    device = head.device
    inputs = {k: v.to(device) for k, v in item["cond"].items()}
    field_fn = functools.partial(head.field, cond=head.condition(inputs), frame=inputs)
    rays_o, rays_d, background = (item[k].to(device) for k in ("rays_o", "rays_d", "background"))
    parts: dict[str, list[Tensor]] = {name: [] for name in names}
    for i in range(0, rays_o.shape[0], chunk):
        out = render_rays(
            field_fn, rays_o[i : i + chunk], rays_d[i : i + chunk], background[i : i + chunk],
            bound=head.field.bound, sampler=head.sampler, occupancy=head.occupancy,
        )
        missing = [name for name in names if name not in out.point_values]
        if missing and out.num_evaluated > 0:
            raise KeyError(f"{type(head.conditioning).__name__} declares deformations {missing} its warp did not report")
        for name in names:
            value = out.point_values.get(name)
            parts[name].append(rays_o.new_zeros(len(out.rgb)) if value is None else composited_norms(out.weights, {name: value}, (name,))[name])
    height, width = item["image"].shape[:2]
    return {name: torch.cat(values).view(height, width).cpu() for name, values in parts.items()}


def heat_map_image(maps: Mapping[str, Tensor]) -> Tensor:
    """``[H, k W]`` in [0, 1]: the maps side by side, on one scale (their common maximum), so that the
    face's and the torso's offsets compare; all zero when every offset is zero."""
    tiles = list(maps.values())
    scale = max(float(t.max()) for t in tiles)
    image = torch.cat(tiles, dim=1)
    return image / scale if scale > 0 else torch.zeros_like(image)
