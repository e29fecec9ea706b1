"""The torch and tiny-cuda-nn backends share one parameter layout; CPU tests check the mapping."""

import numpy as np
import pytest
import torch

from talker.encoders import HashGrid, TriPlaneHashGrid
from talker.encoders import tcnn as tcnn_backend

# Grids the papers use: R2-Talker's positional and landmark grids (Table 6), ER-NeRF's tri-plane
# planes, RAD-NeRF's torso grid, and small ones whose every level kind is exercised.
PAPER_GRIDS = [
    dict(input_dim=3, num_levels=16, level_dim=4, base_resolution=32, log2_hashmap_size=16, desired_resolution=2048),
    dict(input_dim=3, num_levels=16, level_dim=2, base_resolution=32, log2_hashmap_size=16, desired_resolution=2048),
    dict(input_dim=2, num_levels=12, level_dim=1, base_resolution=64, log2_hashmap_size=14, desired_resolution=512),
    dict(input_dim=2, num_levels=16, level_dim=2, base_resolution=16, log2_hashmap_size=16, desired_resolution=2048),
    dict(input_dim=3, num_levels=6, level_dim=2, base_resolution=4, log2_hashmap_size=9, desired_resolution=64),
]


@pytest.mark.parametrize("kw", PAPER_GRIDS)
def test_table_layout_equals_tiny_cuda_nn_layout(kw: dict) -> None:
    grid = HashGrid(**kw)
    offsets, sizes = tcnn_backend.layout(
        kw["input_dim"], kw["num_levels"], kw["base_resolution"], grid.per_level_scale, kw["log2_hashmap_size"]
    )
    assert grid.offsets.tolist() == offsets
    assert grid.sizes.tolist() == sizes
    assert grid.embeddings.numel() == (offsets[-1] + sizes[-1]) * kw["level_dim"]  # tcnn's n_params


@pytest.mark.parametrize("kw", PAPER_GRIDS)
def test_vertex_rows_equal_tiny_cuda_nn_grid_index(kw: dict) -> None:
    grid = HashGrid(**kw)
    gen = torch.Generator().manual_seed(0)
    for level in range(grid.num_levels):
        res = grid.resolutions[level].item()
        base = torch.randint(0, res, (1, 300, kw["input_dim"]), generator=gen)
        rows = grid.vertex_rows(base, [level])[0]  # [N, 2**D]
        corners = [(k >> (kw["input_dim"] - 1 - d)) & 1 for k in range(2 ** kw["input_dim"]) for d in range(kw["input_dim"])]
        corners = torch.tensor(corners).view(-1, kw["input_dim"])
        for k, corner in enumerate(corners):
            expected = tcnn_backend.grid_index((base[0] + corner).numpy(), res, grid.sizes[level].item())
            np.testing.assert_array_equal(rows[:, k].numpy(), expected + grid.offsets[level].item())


def test_params_are_the_table_flattened_row_major() -> None:
    grid = HashGrid(**PAPER_GRIDS[4])
    table = grid.embeddings.detach()
    params = tcnn_backend.table_to_params(table)
    level, row, feature = 3, 17, 1
    flat_row = grid.offsets[level].item() + row
    assert params[flat_row * grid.level_dim + feature] == table[flat_row, feature]
    assert torch.equal(tcnn_backend.params_to_table(params, grid.level_dim), table)
    assert params.data_ptr() == table.data_ptr()  # a view: no copy per step
    config = tcnn_backend.encoding_config(grid)
    assert config["n_levels"] == grid.num_levels and config["per_level_scale"] == grid.per_level_scale


def test_backends_are_one_interface_on_cpu() -> None:
    torch.manual_seed(0)
    reference = HashGrid(**PAPER_GRIDS[4])
    auto = HashGrid(**PAPER_GRIDS[4], backend="auto")
    auto.load_state_dict(reference.state_dict())  # same keys and shapes whatever the backend
    x = torch.rand(64, 3) * 2 - 1
    torch.testing.assert_close(auto(x), reference(x), rtol=0, atol=0)  # no CUDA here: auto is torch


@pytest.mark.skipif(tcnn_backend.available(), reason="tiny-cuda-nn is installed")
def test_tcnn_backend_without_tiny_cuda_nn_says_how_to_install() -> None:
    with pytest.raises(ImportError, match="tiny-cuda-nn.*pip install"):
        HashGrid(**PAPER_GRIDS[4], backend="tcnn")


def test_tcnn_backend_rejects_what_it_cannot_express() -> None:
    with pytest.raises(ValueError, match="gridtype='hash'"):
        HashGrid(**PAPER_GRIDS[4], gridtype="tiled", backend="tcnn")


@pytest.mark.requires_cuda
@pytest.mark.parametrize("kw", PAPER_GRIDS)
def test_tcnn_matches_torch_outputs_and_gradients(kw: dict) -> None:
    """Tolerance: tiny-cuda-nn runs in its preferred precision (fp16 features on most GPUs), so
    outputs agree to 2e-3 and table gradients to 1e-2 of their largest magnitude."""
    pytest.importorskip("tinycudann")
    torch.manual_seed(0)
    reference = HashGrid(**kw).cuda()
    with torch.no_grad():
        reference.embeddings.uniform_(-1, 1)
    fused = HashGrid(**kw, backend="tcnn").cuda()
    fused.load_state_dict(reference.state_dict())
    x = torch.rand(4096, kw["input_dim"], device="cuda") * 2 - 1
    out_ref, out_fused = reference(x), fused(x)
    torch.testing.assert_close(out_fused, out_ref, rtol=0, atol=2e-3)
    grad_out = torch.randn_like(out_ref)
    (out_ref * grad_out).sum().backward()
    (out_fused * grad_out).sum().backward()
    scale = reference.embeddings.grad.abs().max()
    torch.testing.assert_close(fused.embeddings.grad / scale, reference.embeddings.grad / scale, rtol=0, atol=1e-2)


@pytest.mark.requires_cuda
def test_torch_backend_on_cuda_equals_cpu() -> None:
    torch.manual_seed(0)
    grid = HashGrid(**PAPER_GRIDS[1])
    with torch.no_grad():
        grid.embeddings.normal_()
    x = torch.rand(1000, 3) * 2 - 1
    expected = grid(x)
    torch.testing.assert_close(grid.cuda()(x.cuda()).cpu(), expected, rtol=1e-5, atol=1e-5)


def test_autocast_keeps_fp32_table_and_lookup() -> None:
    torch.manual_seed(0)
    grid = HashGrid(**PAPER_GRIDS[4])
    with torch.no_grad():
        grid.embeddings.normal_()
    mlp = torch.nn.Linear(grid.output_dim, 4)
    x = torch.rand(32, 3) * 2 - 1
    expected = grid(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the CPU stand-in for CUDA fp16/bf16 autocast
        encoded = grid(x)
        out = mlp(encoded)
    assert encoded.dtype == torch.float32 and out.dtype == torch.bfloat16
    torch.testing.assert_close(encoded, expected, rtol=0, atol=0)
    out.float().sum().backward()
    assert grid.embeddings.dtype == torch.float32 and grid.embeddings.grad.dtype == torch.float32


def test_triplane_concatenates_the_three_plane_encodings() -> None:
    torch.manual_seed(0)
    enc = TriPlaneHashGrid(num_levels=3, level_dim=2, base_resolution=4, log2_hashmap_size=6, desired_resolution=32)
    with torch.no_grad():
        for plane in enc.planes.values():
            plane.embeddings.normal_()
    x = torch.rand(20, 3) * 2 - 1
    out = enc(x)
    assert out.shape == (20, enc.output_dim) == (20, 18)
    torch.testing.assert_close(out[:, :6], enc.planes["xy"](x[:, [0, 1]]))
    torch.testing.assert_close(out[:, 6:12], enc.planes["yz"](x[:, [1, 2]]))
    torch.testing.assert_close(out[:, 12:], enc.planes["xz"](x[:, [0, 2]]))
    # Moving along z changes only the planes that see z.
    moved = x.clone()
    moved[:, 2] = -moved[:, 2]
    out_moved = enc(moved)
    torch.testing.assert_close(out_moved[:, :6], out[:, :6])
    assert not torch.allclose(out_moved[:, 6:], out[:, 6:])
    enc.level_mask.copy_(torch.tensor([1.0, 0.0, 1.0]))
    masked = enc(x).view(20, 3, 3, 2)  # planes x levels x features
    assert torch.all(masked[:, :, 1] == 0) and masked[:, :, 0].abs().sum() > 0
