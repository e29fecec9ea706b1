import math

import pytest
import torch

from talker.fields import FieldOutput
from talker.rendering import OccupancyGrid, composite, ray_aabb, render_rays, render_weights


def test_weights_match_hand_computation() -> None:
    sigmas = torch.tensor([[0.5, 2.0, 1.0]], dtype=torch.float64)
    deltas = torch.tensor([[0.2, 0.1, 0.4]], dtype=torch.float64)
    a = [1 - math.exp(-0.1), 1 - math.exp(-0.2), 1 - math.exp(-0.4)]
    t = [1.0, math.exp(-0.1), math.exp(-0.1 - 0.2)]
    expected = torch.tensor([[t[i] * a[i] for i in range(3)]], dtype=torch.float64)
    torch.testing.assert_close(render_weights(sigmas, deltas), expected)


def test_composite_over_background() -> None:
    weights = torch.tensor([[0.25, 0.25]])
    rgbs = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    t = torch.tensor([[1.0, 3.0]])
    rgb, depth, opacity = composite(weights, rgbs, t, background=torch.tensor([[0.0, 0.0, 1.0]]))
    torch.testing.assert_close(rgb, torch.tensor([[0.25, 0.25, 0.5]]))
    torch.testing.assert_close(depth, torch.tensor([1.0]))
    torch.testing.assert_close(opacity, torch.tensor([0.5]))


def test_ray_box_intersection() -> None:
    o = torch.tensor([[0.0, 0.0, -3.0], [0.0, 5.0, -3.0]])
    d = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    near, far = ray_aabb(o, d, bound=1.0)
    assert (near[0].item(), far[0].item()) == (2.0, 4.0)
    assert far[1] <= near[1]  # misses


def sphere_field(density: float, radius: float):
    def field_fn(x: torch.Tensor, d: torch.Tensor) -> FieldOutput:
        inside = (x.norm(dim=-1) < radius).to(x.dtype)
        return FieldOutput(sigma=density * inside, rgb=torch.full_like(x, 0.5))

    return field_fn


@pytest.mark.parametrize("offset", [0.0, 0.3])
def test_sphere_opacity_and_depth_match_closed_form(offset: float) -> None:
    density, radius, distance = 2.0, 0.5, 3.0
    o = torch.tensor([[offset, 0.0, -distance]], dtype=torch.float64)
    d = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64)
    out = render_rays(sphere_field(density, radius), o, d, torch.zeros(1, 3, dtype=torch.float64), bound=1.0, num_samples=4096)
    chord = 2 * math.sqrt(radius**2 - offset**2)
    t0 = distance - chord / 2
    opacity = 1 - math.exp(-density * chord)
    # E[t] over the exponential attenuation inside the chord
    depth = t0 * opacity + 1 / density - (chord + 1 / density) * math.exp(-density * chord)
    assert out.opacity.item() == pytest.approx(opacity, abs=2e-3)
    assert out.depth.item() == pytest.approx(depth, abs=5e-3)
    assert out.rgb[0, 0].item() == pytest.approx(0.5 * opacity, abs=2e-3)


def test_occupancy_skips_empty_space_without_changing_the_image() -> None:
    # A cube aligned with the grid's cells (side 0.5 = 8 cells of 1/16), so every cell is all in or all out.
    def field_fn(x: torch.Tensor, d: torch.Tensor) -> FieldOutput:
        inside = (x.abs() < 0.25).all(dim=-1).to(x.dtype)
        return FieldOutput(sigma=5.0 * inside, rgb=torch.full_like(x, 0.5))

    grid = OccupancyGrid(bound=1.0, resolution=32, density_threshold=0.5)
    grid.update([lambda x: field_fn(x, x).sigma])
    o = torch.tensor([[0.0, 0.0, -3.0], [0.2, 0.1, -3.0], [0.9, 0.9, -3.0]])
    d = torch.tensor([[0.0, 0.0, 1.0]]).expand(3, 3)
    bg = torch.ones(3, 3)
    full = render_rays(field_fn, o, d, bg, bound=1.0, num_samples=256)
    pruned = render_rays(field_fn, o, d, bg, bound=1.0, num_samples=256, occupancy=grid)
    torch.testing.assert_close(pruned.rgb, full.rgb)
    assert pruned.num_evaluated < full.num_evaluated / 3
