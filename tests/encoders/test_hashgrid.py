import itertools
import math

import numpy as np
import pytest
import torch

from talker.encoders import HashGrid
from talker.encoders import hashgrid
from talker.encoders.hashgrid import PRIMES, compiled_lookups, interpolate


def grid(**kw) -> HashGrid:
    args = dict(input_dim=3, num_levels=3, level_dim=2, base_resolution=4, log2_hashmap_size=8, desired_resolution=16)
    args.update(kw)
    g = HashGrid(**args)
    with torch.no_grad():
        g.embeddings.normal_()
    return g


def test_level_layout_follows_instant_ngp() -> None:
    g = HashGrid(3, 16, 4, 32, 16, 2048)
    # per_level_scale = (2048/32)^(1/15); level l has ceil(32 * s^l - 1) + 1 vertices per axis, with
    # s^l evaluated as tiny-cuda-nn does, exp2f(l * log2f(s)) in float32 (level 5 gives 129, not 128).
    log2_s = np.log2(np.float32((2048 / 32) ** (1 / 15)))
    expected = [int(np.ceil(np.exp2(np.float32(l) * log2_s) * np.float32(32) - np.float32(1))) + 1 for l in range(16)]
    assert expected[5] == 129
    assert g.resolutions.tolist() == expected
    assert g.hashed.tolist() == [r**3 > 2**16 for r in expected]
    assert g.sizes.tolist() == [min(2**16, math.ceil(r**3 / 8) * 8) for r in expected]
    assert g.embeddings.shape == (sum(g.sizes.tolist()), 4)
    assert g.output_dim == 64


@pytest.mark.parametrize("dim", [2, 3])
def test_exact_at_vertices(dim: int) -> None:
    g = grid(input_dim=dim, num_levels=1, desired_resolution=4, log2_hashmap_size=12)
    scale = g.scales[0].item()
    # vertex v of the lattice sits at x01 = (v - 0.5) / scale
    vertices = torch.tensor([[1, 2, 3][:dim], [2, 1, 1][:dim], [3, 3, 2][:dim]])
    x01 = (vertices.double() - 0.5) / scale
    out = g(x01 * 2 - 1)  # bound 1: x = 2 * x01 - 1
    rows = g.vertex_rows(vertices.unsqueeze(0), torch.tensor([0]))[0, :, 0]
    torch.testing.assert_close(out.double(), g.embeddings[rows].double(), atol=1e-5, rtol=0)


def test_linear_between_vertices() -> None:
    g = grid(num_levels=1, desired_resolution=4, log2_hashmap_size=12)
    scale = g.scales[0].item()
    a = (torch.tensor([[1.0, 2.0, 2.0]]) - 0.5) / scale
    b = (torch.tensor([[2.0, 2.0, 2.0]]) - 0.5) / scale
    fa, fb = g(a * 2 - 1), g(b * 2 - 1)
    for t in (0.25, 0.5, 0.8):
        x = (1 - t) * a + t * b
        torch.testing.assert_close(g(x * 2 - 1), (1 - t) * fa + t * fb, atol=1e-5, rtol=0)


def test_hashed_levels_collide_but_dense_levels_do_not() -> None:
    g = grid(num_levels=2, base_resolution=4, desired_resolution=64, log2_hashmap_size=6)
    assert g.hashed.tolist() == [False, True]
    coords = torch.stack(torch.meshgrid(*[torch.arange(4)] * 3, indexing="ij"), -1).reshape(1, -1, 3)
    dense_rows = g.vertex_rows(coords, torch.tensor([0]))[0, :, 0]
    assert dense_rows.unique().numel() == 64  # a 4^3 lattice fills its 64 rows exactly once
    fine = torch.stack(torch.meshgrid(*[torch.arange(8)] * 3, indexing="ij"), -1).reshape(1, -1, 3)
    hashed_rows = g.vertex_rows(fine, torch.tensor([1]))[0, :, 0]
    assert hashed_rows.min() >= g.offsets[1] and hashed_rows.max() < g.offsets[1] + g.sizes[1]


def test_level_mask_zeroes_levels_and_their_gradients() -> None:
    g = grid()
    g.level_mask.copy_(torch.tensor([1.0, 0.0, 1.0]))
    x = torch.rand(50, 3) * 2 - 1
    out = g(x)
    assert torch.all(out[:, 2:4] == 0) and out[:, :2].abs().sum() > 0
    out.sum().backward()
    level1 = slice(g.offsets[1].item(), g.offsets[1].item() + g.sizes[1].item())
    assert torch.all(g.embeddings.grad[level1] == 0)
    assert g.embeddings.grad.abs().sum() > 0


def test_gradcheck_float64() -> None:
    g = grid(num_levels=2, desired_resolution=8).double()
    x = (torch.rand(6, 3, dtype=torch.float64) * 1.6 - 0.8).requires_grad_()
    assert torch.autograd.gradcheck(g, (x,))  # through the interpolation weights
    pos = ((x.detach() + 1) / 2).unsqueeze(0) * g.scales.view(-1, 1, 1) + 0.5
    rows = g.vertex_rows(pos.floor().long(), torch.arange(2))
    weights = torch.rand(*rows.shape, dtype=torch.float64, requires_grad=True)
    table = g.embeddings.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda t, w: interpolate(t, rows, w), (table, weights))


def test_out_of_bound_inputs_are_clamped() -> None:
    g = grid()
    inside = g(torch.tensor([[1.0, -1.0, 0.3]]))
    outside = g(torch.tensor([[5.0, -7.0, 0.3]]))
    torch.testing.assert_close(inside, outside)


def reference_encoding(g: HashGrid, x: torch.Tensor) -> torch.Tensor:
    """The hash encoding written plainly from instant-NGP's definition, point-major, one level and one
    corner at a time (independent of HashGrid's corner-major lookup): ``[N, D] -> [N, L * C]``."""
    x01 = ((x + g.bound) / (2 * g.bound)).clamp(0, 1)
    levels = []
    for level in range(g.num_levels):
        pos = x01 * g.scales[level].to(x.dtype) + 0.5
        base = pos.floor()
        frac = pos - base
        corner = base.long()
        resolution, size = int(g.resolutions[level]), int(g.sizes[level])
        feature = torch.zeros(x.shape[0], g.level_dim, dtype=x.dtype)
        for bits in itertools.product((0, 1), repeat=g.input_dim):
            c = corner + torch.tensor(bits)
            if bool(g.hashed[level]):
                index = torch.zeros(x.shape[0], dtype=torch.long)
                for d in range(g.input_dim):
                    index ^= (c[:, d] * PRIMES[d]) & 0xFFFFFFFF
            else:  # dense; a tiled level (or the far face's corner) wraps around the table
                index = sum(c[:, d] * resolution**d for d in range(g.input_dim))
            weight = torch.ones(x.shape[0], dtype=x.dtype)
            for d, bit in enumerate(bits):
                weight = weight * (frac[:, d] if bit else 1 - frac[:, d])
            rows = index % size + int(g.offsets[level])
            feature = feature + weight.unsqueeze(-1) * g.embeddings[rows].to(x.dtype)
        levels.append(feature * g.level_mask[level].to(x.dtype))
    return torch.cat(levels, dim=-1)


GRIDS = [
    dict(input_dim=3, num_levels=3, base_resolution=4, log2_hashmap_size=8, desired_resolution=16),  # dense + hashed
    dict(input_dim=2, num_levels=4, base_resolution=4, log2_hashmap_size=6, desired_resolution=64, gridtype="tiled"),
    dict(input_dim=2, num_levels=2, base_resolution=4, log2_hashmap_size=7, desired_resolution=40),  # 2**7 = 128 rows
    # fewer lookups than table rows: gathers whole rows and scatters into (row, channel) bins
    dict(input_dim=3, num_levels=2, base_resolution=16, log2_hashmap_size=15, desired_resolution=64),
]


def encodings_and_gradients(encode, g: HashGrid, x: torch.Tensor, probe: torch.Tensor, points_grad: bool = True):
    """``encode(x)``, and the gradients of ``(encode(x) * probe).sum()`` for the table and the points."""
    points = x.clone().requires_grad_(points_grad)
    out = encode(points)
    (out * probe).sum().backward()
    table = g.embeddings.grad.clone()
    g.embeddings.grad = None
    return out.detach(), table, points.grad


def sample_points(g: HashGrid) -> tuple[torch.Tensor, torch.Tensor]:
    """300 points, some outside the box (clamped onto its faces) and four on the far face (the upper
    corner lies one past the lattice), and a random probe of the encoding."""
    torch.manual_seed(0)
    x = torch.rand(300, g.input_dim) * 2.2 - 1.1
    x[:4] = 1.0
    return x, torch.randn(300, g.output_dim)


@pytest.mark.parametrize("kw", GRIDS)
def test_lookup_and_its_gradients_match_the_plain_definition(kw: dict) -> None:
    """The corner-major lookup (and its hand-written backward) against autograd through the plain
    definition: the values agree to float32 rounding, the gradients of the table and of the input
    points (RAD-NeRF's ambient grid trains through its input) to 1e-5 relative."""
    g = grid(**kw)
    g.level_mask[1] = 0.0  # a switched-off level: zeros, no gradient
    x, probe = sample_points(g)
    out, table, inputs = encodings_and_gradients(g, g, x, probe)
    ref_out, ref_table, ref_inputs = encodings_and_gradients(lambda p: reference_encoding(g, p), g, x, probe)
    torch.testing.assert_close(out, ref_out, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(table, ref_table, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(inputs, ref_inputs, rtol=1e-5, atol=1e-4)
    assert table.abs().sum() > 0 and inputs.abs().sum() > 0


@pytest.mark.parametrize("kw", GRIDS)
def test_the_fused_lookup_and_its_table_gradient_match_the_plain_definition(kw: dict) -> None:
    """:meth:`HashGrid.encode_fused` (what ``compile_lookup`` compiles), run eagerly: the plain
    definition's values and table gradient, with a switched-off level."""
    g = grid(**kw)
    g.level_mask[1] = 0.0
    x, probe = sample_points(g)
    out, table, _ = encodings_and_gradients(lambda p: g.encode_fused(g.normalize(p)), g, x, probe, points_grad=False)
    ref_out, ref_table, _ = encodings_and_gradients(lambda p: reference_encoding(g, p), g, x, probe)
    torch.testing.assert_close(out, ref_out, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(table, ref_table, rtol=1e-5, atol=1e-5)
    assert table.abs().sum() > 0


@pytest.mark.slow
def test_compiled_lookups_give_the_eager_encodings_and_gradients(monkeypatch: pytest.MonkeyPatch) -> None:
    """``compile_lookup()``: lookups with and without gradients go through ``torch.compile`` (C++
    loops here) and give the eager lookup's encodings and table gradients; points that need a
    gradient stay on the eager lookup (it alone gives one); ``compiled_lookups`` restores the setting."""
    g = grid(**GRIDS[0])  # dense and hashed levels: both compiled lookups and both scatters
    assert set(g.hashed.tolist()) == {False, True}
    x, probe = sample_points(g)
    eager = encodings_and_gradients(g, g, x, probe, points_grad=False)
    fused_calls = []
    encode_fused = HashGrid.encode_fused
    monkeypatch.setattr(HashGrid, "encode_fused", lambda self, x01, compiled=False: (
        fused_calls.append(compiled), encode_fused(self, x01, compiled))[1])
    with compiled_lookups(g):
        compiled = encodings_and_gradients(g, g, x, probe, points_grad=False)
        with torch.no_grad():
            torch.testing.assert_close(g(x), eager[0], rtol=1e-6, atol=1e-6)
        assert fused_calls == [True, True]  # the compiled path was taken, through torch.compile:
        assert all(hasattr(hashgrid._COMPILED[kind, 3, hashed], "_torchdynamo_orig_callable")
                   for kind in ("lookup", "scatter") for hashed in (False, True))
        _, _, point_grads = encodings_and_gradients(g, g, x, probe)
        assert fused_calls == [True, True] and point_grads.abs().sum() > 0
    assert not g._compiled
    torch.testing.assert_close(compiled[0], eager[0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(compiled[1], eager[1], rtol=1e-5, atol=1e-6)
