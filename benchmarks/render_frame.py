"""Full-frame render time of an R2-Talker head at 450 x 450: training path vs fast path side by side;
on CUDA, torch vs tiny-cuda-nn.

    python benchmarks/render_frame.py                                  # paper-sized field, head proxy
    python benchmarks/render_frame.py --run runs/quickstart/default    # a trained run's field
    python benchmarks/render_frame.py --run ... --compile              # also the fast path with compiled
                                                                       # hash-grid lookups
    python benchmarks/render_frame.py --run ... --samplers             # also the uniform / uncompacted samplers

The training path is ``TalkingHead.render_frame`` (ray marcher + compacted ``render_chunked``); the
fast path is ``talker.inference.fast_render`` (docs/inference.md). The two are timed alternately,
``--repeats`` times each, and the median of each and their ratio printed, with the PSNR of the fast
frame against the training frame.

Without ``--run``, the field has R2-Talker's paper sizes (Table 6: 16 x 4 positional grid, 128-wide
sigma net, landmark hash grid + M-AGLO) with untrained weights, and the occupancy grid (128^3) is
set to an ellipsoidal head proxy: every ray through the proxy takes up to ``max_steps`` samples
and an untrained field never saturates a ray, so this is the marcher's worst case. With ``--run``,
a trained run renders its first held-out frame at 450 x 450 (intrinsics scaled), where early
termination and the learned occupancy apply. Figures are the best of ``--repeats`` renders.
CUDA targets (issue): a 450 x 450 R2 head frame under 10 ms; torch backend within 3x of
tiny-cuda-nn.
"""

from __future__ import annotations

import argparse
import functools
import math
import statistics
import time
from pathlib import Path

import torch

from talker.config import compose_config, instantiate
from talker.data.cameras import pixel_rays
from talker.encoders.hashgrid import hash_grids
from talker.encoders import tcnn as tcnn_backend
from talker.inference.fast_render import frame_renderer
from talker.modules.head import HeadModule
from talker.rendering import OccupancyGrid, UniformSampler, render_chunked
from talker.runs import RunFolder


def occupy_head_proxy(grid: OccupancyGrid) -> None:
    """Set an untrained head's occupancy grid to a head-sized ellipsoid at the box centre: every ray
    through it takes up to ``max_steps`` samples (an untrained field never saturates a ray)."""
    centers = grid.cell_centers(0, torch.arange(grid.resolution**3, device=grid.density.device))
    head = ((centers / centers.new_tensor([0.35, 0.45, 0.4])) ** 2).sum(-1) < 1
    grid.density.view(-1)[:] = head.float() * 100.0
    grid.updates.fill_(1)
    grid._threshold()


def paper_module() -> tuple[HeadModule, dict, torch.Tensor, torch.Tensor]:
    cfg = compose_config([])
    module: HeadModule = instantiate(cfg.model, "model")
    occupy_head_proxy(module.head.occupancy)
    cond = {"landmarks": torch.rand(cfg.data.landmark_window, 68, 3) * 0.6 - 0.3}
    c2w = torch.eye(4)
    c2w[2, 3] = -3.0  # ngp frame: the camera looks down +z at the box centre
    fov = torch.deg2rad(torch.tensor(24.0))
    focal = 450 / 2 / torch.tan(fov / 2)
    intrinsics = torch.tensor([focal, focal, 225.0, 225.0])
    return module, cond, c2w, intrinsics


def run_module(run: Path) -> tuple[HeadModule, dict, torch.Tensor, torch.Tensor]:
    folder = RunFolder(run)
    cfg = folder.config()
    module: HeadModule = folder.load_module(cfg)
    datamodule = instantiate(cfg.data, "data")
    datamodule.setup("fit")
    split = datamodule.val_split
    scale = 450 / split.width
    intrinsics = split.intrinsics * torch.tensor([scale, scale, scale, scale])
    cond = datamodule.conditions.of_split(split, 0, keys=["landmarks"])
    return module, cond, split.poses[0], intrinsics


def time_render(module: HeadModule, frame: dict, sampler, compact: bool, repeats: int, device: str) -> tuple[float, int]:
    module.head.sampler = sampler
    field_fn = functools.partial(module.head.field, cond=module.head.condition(frame["cond"]), frame=frame["cond"])

    def render():
        return render_chunked(
            field_fn, frame["rays_o"], frame["rays_d"], frame["background"], chunk=module.head.eval_chunk,
            bound=module.head.field.bound, sampler=sampler, occupancy=module.head.occupancy, compact=compact,
        )

    if device == "cuda":
        render()  # warm-up (allocator, tiny-cuda-nn set-up)
    best, out = float("inf"), None
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = render()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, out.num_evaluated


def make_frame(cond: dict, c2w: torch.Tensor, intrinsics: torch.Tensor, size: int, device: str) -> dict:
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    pixels = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=-1)
    rays_o, rays_d = pixel_rays(c2w.float(), intrinsics.float(), pixels)
    return {
        "rays_o": rays_o.to(device),
        "rays_d": rays_d.to(device),
        "background": torch.ones(size * size, 3, device=device),
        "cond": {k: v.to(device) for k, v in cond.items()},
    }


def side_by_side(module: HeadModule, frame: dict, repeats: int, compile: bool) -> None:
    """Training path and fast path (eager, and compiled with ``compile``), timed alternately."""
    head = module.head
    paths = {"training path (marcher, compacted)": head.render_frame, "fast path (eager)": frame_renderer(head)}
    if compile:
        compiled = frame_renderer(head, compile=True)
        start = time.perf_counter()
        compiled(frame)  # compilation, not timed
        print(f"fast path with compiled lookups: first frame (compiling) {time.perf_counter() - start:.1f} s")
        paths["fast path (compiled lookups)"] = compiled
    times: dict[str, list[float]] = {name: [] for name in paths}
    outs = {}
    for _ in range(repeats):
        for name, render in paths.items():
            start = time.perf_counter()
            outs[name] = render(frame)
            times[name].append(time.perf_counter() - start)
    reference_name = next(iter(paths))
    reference, base = outs[reference_name], statistics.median(times[reference_name])
    print(f"{'path':40s} {'s/frame':>9s} {'evals/frame':>12s} {'speed-up':>9s} {'PSNR vs training':>17s}")
    for name in paths:
        seconds, out = statistics.median(times[name]), outs[name]
        mse = float(((out.rgb - reference.rgb) ** 2).mean())
        quality = "-" if name == reference_name else f"{10 * math.log10(1 / max(mse, 1e-20)):.1f} dB"
        print(f"{name:40s} {seconds:9.3f} {out.num_evaluated:12d} {base / seconds:8.2f}x {quality:>17s}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None, help="a run folder (config.yaml, checkpoints/last.ckpt)")
    parser.add_argument("--size", type=int, default=450)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", action="store_true",
                        help="also time the fast path with compiled hash-grid lookups")
    parser.add_argument("--samplers", action="store_true", help="also time the uniform and uncompacted samplers")
    args = parser.parse_args()
    module, cond, c2w, intrinsics = run_module(args.run) if args.run else paper_module()
    module.eval()
    marcher = module.head.sampler
    what = f"trained run {args.run}" if args.run else "paper-sized R2 field (untrained), ellipsoid head proxy"
    print(f"{what}; {args.size} x {args.size} rays; torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    variants = [
        ("uniform 64 samples/ray, skip empty (skeleton)", UniformSampler(num_samples=64), False),
        (f"ray marcher (max_steps={marcher.max_steps}), no compaction", marcher, False),
        (f"ray marcher (max_steps={marcher.max_steps}), compacted", marcher, True),
    ]
    frame = make_frame(cond, c2w, intrinsics, args.size, "cpu")
    side_by_side(module, frame, args.repeats, args.compile)
    if args.samplers:
        print(f"\n{'CPU, samplers of the training path':60s} {'s/frame':>9s} {'evals/frame':>12s} {'speed-up':>9s}")
    baseline = None
    with torch.no_grad():
        for name, sampler, compact in variants if args.samplers else []:
            seconds, evals = time_render(module, frame, sampler, compact, 1, "cpu")
            baseline = baseline or seconds
            print(f"{name:60s} {seconds:9.2f} {evals:12d} {baseline / seconds:8.2f}x")
    if not torch.cuda.is_available():
        print("CUDA: not available here; the GPU frame time (target < 10 ms) and torch vs tiny-cuda-nn need a GPU")
        return
    module.head.sampler = marcher
    module.cuda()
    frame = make_frame(cond, c2w, intrinsics, args.size, "cuda")
    print(f"\nCUDA ({torch.cuda.get_device_name()}): {'backend':10s} {'ms/frame':>9s}")
    times = {}
    for backend in ("torch", "tcnn"):
        if backend == "tcnn" and not tcnn_backend.available():
            print(f"  tcnn: missing ({tcnn_backend.INSTALL_HINT})")
            continue
        for grid in hash_grids(module):
            grid.backend = backend if (backend == "torch" or tcnn_backend.supports(grid)) else "torch"
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16):
            seconds, _ = time_render(module, frame, marcher, True, max(args.repeats, 5), "cuda")
        times[backend] = seconds
        print(f"  {backend:10s} {seconds * 1000:9.2f} (target < 10 ms)")
    if len(times) == 2:
        print(f"  torch / tcnn: {times['torch'] / times['tcnn']:.2f} (target <= 3)")


if __name__ == "__main__":
    main()
