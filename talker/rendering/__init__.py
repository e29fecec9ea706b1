"""Rendering engine: occupancy grid, ray marching and volume compositing over callable fields."""

from talker.rendering.occupancy import ConditionSweep, OccupancyGrid
from talker.rendering.renderer import FieldFn, RenderOutput, render_chunked, render_rays
from talker.rendering.samplers import RayMarcher, RayNoise, RaySampler, RaySamples, UniformSampler, ray_aabb, stratified_samples
from talker.rendering.volrend import accumulate, composite, exclusive_sum, optical_depths, render_weights, transmittance

__all__ = [
    "ConditionSweep",
    "FieldFn",
    "OccupancyGrid",
    "RayMarcher",
    "RayNoise",
    "RaySampler",
    "RaySamples",
    "RenderOutput",
    "UniformSampler",
    "accumulate",
    "composite",
    "exclusive_sum",
    "optical_depths",
    "ray_aabb",
    "render_chunked",
    "render_rays",
    "render_weights",
    "stratified_samples",
    "transmittance",
]
