"""Rendering engine: occupancy grid, ray sampling and volume compositing over callable fields."""

from talker.rendering.occupancy import OccupancyGrid
from talker.rendering.renderer import FieldFn, RenderOutput, render_chunked, render_rays
from talker.rendering.samplers import ray_aabb, stratified_samples
from talker.rendering.volrend import accumulate, composite, render_weights

__all__ = [
    "FieldFn",
    "OccupancyGrid",
    "RenderOutput",
    "accumulate",
    "composite",
    "ray_aabb",
    "render_chunked",
    "render_rays",
    "render_weights",
    "stratified_samples",
]
