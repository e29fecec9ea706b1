"""The fast rendering path (talker.inference.fast_render) renders what the training path renders.

- every system's field bound to a frame (``Field.bind``: the condition folded into the weights)
  gives the field's own outputs;
- a tiny quickstart head with a torso, trained for a few dozen steps, renders its held-out frames
  on the fast path within 45 dB PSNR of the training path (``TalkingHead.render_frame``), head and
  torso together;
- nothing in talker/inference creates a tensor without saying where (device audit), and the fast
  path builds and runs on the ``meta`` device.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
import torch

from talker.config import compose_config, instantiate
from talker.encoders import HashGrid
from talker.encoders.hashgrid import hash_grids
from talker.fields.base import FieldOutput
from talker.fit import train
from talker.inference.fast_render import FastRenderer, frame_renderer
from talker.rendering import OccupancyGrid, RayMarcher
from talker.runs import RunFolder

from ..conftest import TINY
from ..fields.test_contract import SYSTEMS, points, system_head

NO_SCORING = ["callbacks.evaluation=null", "callbacks.projector=null", "callbacks.images=null"]
TORSO = [
    "schedule.torso_steps=2000",
    "model.head.torso.grid.num_levels=2",
    "model.head.torso.grid.log2_hashmap_size=10",
    "model.head.torso.hidden_dim=8",
    "model.head.torso.deform_hidden=8",
]
INFERENCE = Path(__file__).resolve().parents[2] / "talker" / "inference"


@pytest.mark.parametrize("name", SYSTEMS)
def test_a_field_bound_to_a_frame_computes_the_field(name: str, tiny_clip: Path) -> None:
    """``field.bind(cond, frame)(x, d)`` = ``field(x, d, cond, frame)`` for every system's field and
    strategy (M-AGLO scales and shifts, GLO vectors, ambient features, eye and per-frame codes)."""
    head, split, conditions = system_head(name, tiny_clip)
    head.eval()
    with torch.no_grad():  # off the zero-initialised layers, so that the condition matters
        gen = torch.Generator().manual_seed(2)
        for p in [*head.conditioning.parameters(), *head.field.parameters()]:
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
        frame = {**conditions.of_split(split, 3), "index": 3}
        cond = head.condition(frame)
        x, d = points(256)
        want, got = head.field(x, d, cond, frame), head.field.bind(cond, frame)(x, d)
    torch.testing.assert_close(got.sigma, want.sigma, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got.rgb, want.rgb, rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, data_dir: Path):
    """A tiny quickstart head trained for 32 steps, then its torso for 16."""
    root = tmp_path_factory.mktemp("fast")
    run = train(compose_config([
        "experiment=quickstart", *TINY, *TORSO, *NO_SCORING, "schedule.scale=0.008", f"paths.data_dir={data_dir}",
        f"run_dir={root / 'head'}",
    ]))
    folder = RunFolder(run)
    cfg = folder.config()
    module = folder.load_module(cfg).eval()
    datamodule = instantiate(cfg.data, "data")
    datamodule.setup("fit")
    return module.head, datamodule.eval_frames()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1.0 / max(float(((a - b) ** 2).mean()), 1e-20))


def test_fast_path_renders_the_training_paths_image(trained) -> None:
    head, frames = trained
    assert bool(head.torso_trained) and head.torso is not None  # head and torso rendered together
    fast = frame_renderer(head, tile=256)  # several tiles per 32 x 32 frame, the last one padded
    for i in range(len(frames)):
        item = frames[i]
        reference, out = head.render_frame(item), fast(item)
        assert out.num_evaluated > 0
        assert psnr(out.rgb, reference.rgb) > 45.0, (i, psnr(out.rgb, reference.rgb))
        torch.testing.assert_close(out.opacity, reference.opacity, rtol=0, atol=1e-4)
        assert (reference.opacity > 0.5).float().mean() > 0.05  # a head was rendered, not just background
        # Without the learned torso the head lies over another background: the torso was composited.
        assert psnr(out.rgb, head.render_frame({k: v for k, v in item.items() if k != "bc"}).rgb) < 45.0


def test_masked_and_gathered_evaluation_agree(trained) -> None:
    head, frames = trained
    item = frames[0]
    gathered = frame_renderer(head, tile=512)(item)
    masked = frame_renderer(head, tile=512, gather=False)(item)
    assert psnr(masked.rgb, gathered.rgb) > 60.0
    assert masked.num_evaluated == gathered.num_evaluated


@pytest.mark.slow
def test_compiled_lookups_render_the_eager_fast_paths_image(trained, monkeypatch: pytest.MonkeyPatch) -> None:
    """``frame_renderer(head, compile=True)``: the head's and the torso's hash-grid lookups run
    through ``torch.compile`` while it renders, and give the eager fast path's image; afterwards the
    grids look up eagerly again."""
    head, frames = trained
    item = frames[0]
    compiled_calls = []
    encode_fused = HashGrid.encode_fused
    monkeypatch.setattr(HashGrid, "encode_fused", lambda self, x01, compiled=False: (
        compiled_calls.append((self.input_dim, compiled)), encode_fused(self, x01, compiled))[1])
    eager = frame_renderer(head, tile=256)(item)
    assert not compiled_calls
    compiled = frame_renderer(head, tile=256, compile=True)(item)
    assert {dims for dims, on in compiled_calls if on} == {2, 3}  # torso (2D) and head (3D) grids
    assert psnr(compiled.rgb, eager.rgb) > 60.0
    assert compiled.num_evaluated == eager.num_evaluated
    assert not any(grid._compiled for grid in hash_grids(head))


def test_a_grid_without_occupied_cells_renders_the_background() -> None:
    grid = OccupancyGrid(bound=1.0, resolution=8)
    grid.occupied.zero_()
    grid._update_box()
    fast = FastRenderer(grid, RayMarcher(max_steps=8), bound=1.0)
    background = torch.rand(4, 3)
    out = fast(lambda x, d: pytest.fail("no point may be evaluated"), torch.zeros(4, 3) - 3, torch.eye(3)[[2, 2, 2, 2]], background)
    assert torch.equal(out.rgb, background) and out.num_evaluated == 0


FACTORIES = {"zeros", "ones", "empty", "full", "arange", "rand", "randn", "randint", "tensor", "as_tensor", "linspace", "eye"}


def test_every_tensor_factory_in_talker_inference_names_its_device() -> None:
    """A ``torch.zeros(...)`` without ``device=`` makes a CPU tensor next to a CUDA model: every torch
    factory call in talker/inference says where (``device=``), or is ``new_*`` / ``*_like`` of a tensor."""
    bare = []
    for path in sorted(INFERENCE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in FACTORIES
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"
                and not any(k.arg == "device" for k in node.keywords)
            ):
                bare.append(f"{path.name}:{node.lineno} torch.{node.func.attr}")
    assert not bare, bare


def test_a_tile_renders_on_the_meta_device() -> None:
    """A tile (marching, occupancy, early-termination rounds, compositing) built and run on ``meta``:
    a tensor made on the CPU anywhere in it would fail to mix with the others."""
    grid = OccupancyGrid(bound=1.0, resolution=8).to("meta")
    fast = FastRenderer(grid, RayMarcher(max_steps=8, dt_gamma=1 / 256), bound=1.0, gather=False)
    meta = {"device": "meta"}
    field_fn = lambda x, d: FieldOutput(sigma=x.norm(dim=-1), rgb=torch.sigmoid(x + d))  # noqa: E731
    rgb, depth, opacity, evaluated = fast._render_tile(
        field_fn, torch.zeros(16, 3, **meta), torch.ones(16, 3, **meta), torch.zeros(16, **meta), torch.ones(16, **meta),
        torch.ones(16, 3, **meta), 12, 0.05, 0.1,
    )
    assert {t.device.type for t in (rgb, depth, opacity, evaluated)} == {"meta"}
    assert rgb.shape == (16, 3) and depth.shape == opacity.shape == (16,)
