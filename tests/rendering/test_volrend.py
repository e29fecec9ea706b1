import math

import pytest
import torch

from talker.fields import FieldOutput
from talker.nn.mlp import trunc_exp
from talker.rendering import (
    OccupancyGrid,
    RayMarcher,
    UniformSampler,
    composite,
    exclusive_sum,
    ray_aabb,
    render_chunked,
    render_rays,
    render_weights,
    transmittance,
)


def test_weights_match_hand_computation() -> None:
    sigmas = torch.tensor([[0.5, 2.0, 1.0]], dtype=torch.float64)
    deltas = torch.tensor([[0.2, 0.1, 0.4]], dtype=torch.float64)
    a = [1 - math.exp(-0.1), 1 - math.exp(-0.2), 1 - math.exp(-0.4)]
    t = [1.0, math.exp(-0.1), math.exp(-0.1 - 0.2)]
    torch.testing.assert_close(transmittance(sigmas, deltas), torch.tensor([t], dtype=torch.float64))
    expected = torch.tensor([[t[i] * a[i] for i in range(3)]], dtype=torch.float64)
    torch.testing.assert_close(render_weights(sigmas, deltas), expected)


def test_early_termination_drops_samples_behind_an_opaque_one() -> None:
    # T before the samples: 1, e^-5, e^-10 (= 4.5e-5 < 1e-4), e^-15.
    sigmas = torch.tensor([[50.0, 50.0, 50.0, 50.0]], dtype=torch.float64)
    deltas = torch.full((1, 4), 0.1, dtype=torch.float64)
    a = 1 - math.exp(-5)
    expected = torch.tensor([[a, math.exp(-5) * a, 0.0, 0.0]], dtype=torch.float64)
    weights = render_weights(sigmas, deltas, transmittance_threshold=1e-4)
    torch.testing.assert_close(weights, expected)
    sigmas.requires_grad_(True)
    render_weights(sigmas, deltas, transmittance_threshold=1e-4)[:, 2:].sum().backward()
    assert torch.all(sigmas.grad == 0)  # terminated samples pass no gradient


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
    near, far = ray_aabb(o, d, torch.tensor([[-1.0, -1.0, -0.5], [1.0, 1.0, 0.25]]))
    assert (near[0].item(), far[0].item()) == (2.5, 3.25)


def sphere_field(density: float, radius: float):
    def field_fn(x: torch.Tensor, d: torch.Tensor) -> FieldOutput:
        inside = (x.norm(dim=-1) < radius).to(x.dtype)
        return FieldOutput(sigma=density * inside, rgb=torch.full_like(x, 0.5))

    return field_fn


def sphere_grid(radius: float) -> OccupancyGrid:
    grid = OccupancyGrid(bound=1.0, resolution=32, density_threshold=0.5)
    grid.update(lambda x: 2.0 * (x.norm(dim=-1) < radius + 0.07))  # cells the sphere touches (+ a cell diagonal)
    return grid


SAMPLERS = {
    "uniform": (UniformSampler(num_samples=4096), False),
    "marcher": (RayMarcher(max_steps=4096, step_size=5e-4), False),
    "marcher+grid": (RayMarcher(max_steps=4096, step_size=5e-4), True),
    "marcher+grid+dt_gamma": (RayMarcher(max_steps=4096, step_size=2e-4, max_step_size=1e-3, dt_gamma=1 / 2000), True),
}


@pytest.mark.parametrize("sampler_name", list(SAMPLERS))
@pytest.mark.parametrize("offset", [0.0, 0.3])
def test_sphere_opacity_and_depth_match_closed_form(offset: float, sampler_name: str) -> None:
    density, radius, distance = 2.0, 0.5, 3.0
    sampler, with_grid = SAMPLERS[sampler_name]
    o = torch.tensor([[offset, 0.0, -distance]], dtype=torch.float64)
    d = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64)
    out = render_rays(
        sphere_field(density, radius), o, d, torch.zeros(1, 3, dtype=torch.float64), bound=1.0,
        sampler=sampler, occupancy=sphere_grid(radius) if with_grid else None,
    )
    chord = 2 * math.sqrt(radius**2 - offset**2)
    t0 = distance - chord / 2
    opacity = 1 - math.exp(-density * chord)
    # E[t] over the exponential attenuation inside the chord
    depth = t0 * opacity + 1 / density - (chord + 1 / density) * math.exp(-density * chord)
    assert out.opacity.item() == pytest.approx(opacity, abs=2e-3)
    assert out.depth.item() == pytest.approx(depth, abs=5e-3)
    assert out.rgb[0, 0].item() == pytest.approx(0.5 * opacity, abs=2e-3)
    if with_grid:  # the marcher never evaluates outside the sphere's cells
        assert out.num_evaluated < 1.3 * chord / 5e-4


def test_marcher_lattice_follows_the_step_rule() -> None:
    marcher = RayMarcher(max_steps=4096, step_size=0.01, max_step_size=0.05, dt_gamma=1 / 64)
    t0 = torch.tensor([0.2, 1.0, 2.9], dtype=torch.float64)
    lattice = marcher.lattice(t0, torch.arange(200), 0.01, 0.05)
    for i, start in enumerate(t0.tolist()):  # the recurrence of instant-NGP's marching kernel
        t, expected = start, []
        for _ in range(200):
            expected.append(t)
            t += min(max(t / 64, 0.01), 0.05)
        torch.testing.assert_close(lattice[i], torch.tensor(expected, dtype=torch.float64), rtol=1e-9, atol=1e-9)


def test_marcher_skips_empty_cells_and_caps_steps() -> None:
    grid = OccupancyGrid(bound=1.0, resolution=16, density_threshold=0.5)
    grid.update(lambda x: 5.0 * ((x[:, 2] > 0.0) & (x[:, 2] < 0.25)))  # one slab of cells
    o = torch.tensor([[0.1, 0.1, -3.0], [0.1, 0.1, -3.0]])
    d = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    samples = RayMarcher(max_steps=100, step_size=0.01)(o, d, bound=1.0, occupancy=grid)
    t = samples.t_mids[samples.mask]
    assert torch.all((t > 3.0) & (t < 3.25))  # only inside the slab
    assert samples.counts.tolist() == [25, 25]
    capped = RayMarcher(max_steps=10, step_size=0.01)(o, d, bound=1.0, occupancy=grid)
    assert capped.counts.tolist() == [10, 10]
    torch.testing.assert_close(capped.t_starts, samples.t_starts[:, :10])  # the first ten, in order


def test_marcher_returns_no_samples_when_no_cell_is_occupied() -> None:
    grid = OccupancyGrid(bound=1.0, resolution=16, density_threshold=0.5)
    grid.update(lambda x: torch.full((x.shape[0],), float("nan")))  # a diverged field: nothing passes
    assert not grid.occupied.any()
    o, d = torch.tensor([[0.1, 0.1, -3.0]]), torch.tensor([[0.0, 0.0, 1.0]])
    samples = RayMarcher(max_steps=100, step_size=0.01)(o, d, bound=1.0, occupancy=grid)
    assert samples.mask.shape == (1, 0) and samples.counts.tolist() == [0]


def test_default_step_rule_is_rad_nerfs() -> None:
    grid = OccupancyGrid(bound=1.0, resolution=128)
    dt_min, dt_max = RayMarcher(max_steps=16, dt_gamma=1 / 256).step_bounds(1.0, grid)
    assert dt_max == pytest.approx(2 * math.sqrt(3) / 128)  # sqrt(3) x cell side
    assert dt_min == dt_max  # 2 sqrt(3) / 16 is larger: constant steps of a cell diagonal


def random_blobs(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    centres = torch.rand(6, 3, generator=gen) - 0.5
    colours = torch.rand(6, 3, generator=gen)

    def field_fn(x: torch.Tensor, d: torch.Tensor) -> FieldOutput:
        dist = (x.unsqueeze(1) - centres).norm(dim=-1)  # [N, 6]
        w = torch.exp(-((dist / 0.15) ** 2))
        rgb = (w.unsqueeze(-1) * colours).sum(1) / (w.sum(1, keepdim=True) + 1e-6)
        return FieldOutput(sigma=400.0 * w.sum(-1), rgb=rgb)

    return field_fn


def camera_rays(n: int = 24):
    ys, xs = torch.meshgrid(torch.linspace(-0.4, 0.4, n), torch.linspace(-0.4, 0.4, n), indexing="ij")
    d = torch.nn.functional.normalize(torch.stack([xs, ys, torch.ones_like(xs)], -1).reshape(-1, 3), dim=-1)
    return torch.tensor([0.0, 0.0, -2.5]).expand_as(d), d


def test_compaction_equals_full_evaluation() -> None:
    field_fn = random_blobs()
    grid = OccupancyGrid(bound=1.0, resolution=32, density_threshold=0.5)
    grid.update(lambda x: field_fn(x, x).sigma)
    o, d = camera_rays()
    bg = torch.rand(o.shape[0], 3, generator=torch.Generator().manual_seed(1))
    kwargs = dict(bound=1.0, sampler=RayMarcher(max_steps=256, step_size=0.01), occupancy=grid)
    full = render_rays(field_fn, o, d, bg, **kwargs)
    compacted = render_rays(field_fn, o, d, bg, compact=True, **kwargs)
    assert full.opacity.max() > 0.99 and full.opacity.min() < 0.01  # opaque and empty rays both occur
    for key in ("rgb", "depth", "opacity", "weights"):
        torch.testing.assert_close(getattr(compacted, key), getattr(full, key), rtol=0, atol=1e-5, msg=key)
    assert compacted.num_evaluated < 0.7 * full.num_evaluated  # terminated rays stopped early
    chunked = render_chunked(field_fn, o, d, bg, chunk=100, **kwargs)
    torch.testing.assert_close(chunked.rgb, full.rgb, rtol=0, atol=1e-5)


def test_gradients_reach_the_field() -> None:
    density = torch.tensor(2.0, requires_grad=True)

    def field_fn(x: torch.Tensor, d: torch.Tensor) -> FieldOutput:
        return FieldOutput(sigma=density * (x.norm(dim=-1) < 0.5), rgb=torch.full_like(x, 0.5))

    o, d = torch.tensor([[0.0, 0.0, -3.0]]), torch.tensor([[0.0, 0.0, 1.0]])
    out = render_rays(field_fn, o, d, torch.zeros(1, 3), bound=1.0, sampler=RayMarcher(step_size=0.01), perturb=True)
    out.opacity.sum().backward()
    # d/dsigma (1 - exp(-sigma * chord)) = chord * exp(-sigma * chord), chord = 1
    assert density.grad.item() == pytest.approx(math.exp(-2.0), abs=0.02)


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
    for sampler in (UniformSampler(num_samples=256), RayMarcher(max_steps=1024, step_size=2 / 256)):
        full = render_rays(field_fn, o, d, bg, bound=1.0, sampler=sampler)
        pruned = render_rays(field_fn, o, d, bg, bound=1.0, sampler=sampler, occupancy=grid)
        torch.testing.assert_close(pruned.rgb, full.rgb)
        assert pruned.num_evaluated < full.num_evaluated / 3


def test_extra_channels_are_composited_with_the_colour_weights() -> None:
    """A field's extra per-point channels (ER-NeRF's uncertainty) come back per ray as ``sum_i w_i e_i``."""
    field_fn_plain = random_blobs()

    def field_fn(x: torch.Tensor, d: torch.Tensor) -> FieldOutput:
        out = field_fn_plain(x, d)
        return FieldOutput(out.sigma, out.rgb, extras={"u": x[:, 0] ** 2, "uv": x[:, :2]})

    o, d = camera_rays(8)
    out = render_rays(field_fn, o, d, torch.zeros_like(o), bound=1.0, sampler=RayMarcher(max_steps=64, step_size=0.02))
    points = o.unsqueeze(1) + d.unsqueeze(1) * out.samples.t_mids.unsqueeze(-1)  # [R, S, 3]
    expected = (out.weights * points[..., 0] ** 2 * out.samples.mask).sum(dim=1)
    torch.testing.assert_close(out.extras["u"], expected)
    assert out.extras["uv"].shape == (o.shape[0], 2) and out.opacity.max() > 0.5
    assert render_chunked(field_fn, o, d, torch.zeros_like(o), bound=1.0).extras == {}  # inference keeps colour only


@pytest.mark.parametrize("compact", [False, True], ids=["padded", "compacted"])
def test_an_infinite_density_renders_an_opaque_surface_not_nan(compact: bool) -> None:
    """A density logit above 88.7 overflows ``exp`` to inf (it happened 149 steps into a real-clip run
    at lr_net 3e-3): the ray ends there with weight 1, as instant-NGP's kernels give, and gradients
    stay finite; ``cumsum(od) - od`` made it ``inf - inf = NaN``."""
    logit = torch.tensor(0.0, requires_grad=True)

    def field_fn(x: torch.Tensor, d: torch.Tensor) -> FieldOutput:
        inside = x.norm(dim=-1) < 0.5
        sigma = trunc_exp(torch.where(inside, 100.0 + logit, torch.full_like(x[:, 0], -10.0) + logit))
        return FieldOutput(sigma=sigma, rgb=torch.where(inside.unsqueeze(-1), 0.8, 0.2).expand_as(x))

    o, d = camera_rays(6)
    out = render_rays(field_fn, o, d, torch.zeros_like(o), bound=1.0, sampler=RayMarcher(step_size=0.01), compact=compact)
    hits = (o + d * 2.5).norm(dim=-1) < 0.45  # rays through the sphere's centre region
    assert torch.isfinite(out.rgb).all() and hits.any()
    torch.testing.assert_close(out.opacity[hits], torch.ones(int(hits.sum())), atol=1e-4, rtol=0)
    torch.testing.assert_close(out.rgb[hits], torch.full((int(hits.sum()), 3), 0.8), atol=1e-3, rtol=0)
    out.rgb.sum().backward()
    assert torch.isfinite(logit.grad)


def test_exclusive_sum_of_an_infinite_term() -> None:
    values = torch.tensor([[0.5, float("inf"), 1.0], [0.5, 0.25, 1.0]])
    assert exclusive_sum(values).tolist() == [[0.0, 0.5, float("inf")], [0.0, 0.5, 0.75]]
    weights = render_weights(torch.tensor([[0.5, float("inf"), 1.0]]), torch.full((1, 3), 0.1))
    expected = [1 - math.exp(-0.05), math.exp(-0.05), 0.0]
    assert weights[0].tolist() == pytest.approx(expected)
