"""Hash-grid forward+backward throughput (points/s): pure PyTorch on CPU; on CUDA, torch vs tiny-cuda-nn.

    python benchmarks/hashgrid_throughput.py [--points 65536] [--repeats 5]

Grids: R2-Talker's positional grid (Table 6), the quickstart's CPU-sized one, R2's landmark grid
and ER-NeRF's tri-plane. Forward+backward = encode the points, then back-propagate a random
gradient into the table (as head training does: sample positions need no gradient). The CUDA
section prints tiny-cuda-nn next to the torch backend with their ratio (target: torch within 3x).
"""

from __future__ import annotations

import argparse
import time

import torch

from talker.encoders import HashGrid, TriPlaneHashGrid
from talker.encoders import tcnn as tcnn_backend

GRIDS = {
    "R2 positional (16 x 4, 2^16, 32..2048)": lambda **kw: HashGrid(3, 16, 4, 32, 16, 2048, **kw),
    "quickstart positional (8 x 2, 2^16, 16..512)": lambda **kw: HashGrid(3, 8, 2, 16, 16, 512, **kw),
    "R2 landmark (16 x 2, 2^16, 32..2048)": lambda **kw: HashGrid(3, 16, 2, 32, 16, 2048, **kw),
    "ER-NeRF tri-plane (3 x 12 x 1, 2^14, 64..512)": lambda **kw: TriPlaneHashGrid(12, 1, 64, 14, 512, **kw),
}


def throughput(grid: torch.nn.Module, points: int, repeats: int, device: str, backward: bool = True) -> float:
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.rand(points, 3, device=device, generator=gen) * 2 - 1
    grad = torch.randn(points, grid.output_dim, device=device, generator=gen)

    def step() -> None:
        out = grid(x)
        if backward:
            out.backward(grad)

    step()  # warm-up (allocations, tiny-cuda-nn set-up)
    if device == "cuda":
        torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return points / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=65536)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, {args.points} points, best of {args.repeats}")
    print(f"{'grid':48s} {'CPU fwd Mpts/s':>15s} {'CPU fwd+bwd Mpts/s':>19s}")
    for name, make in GRIDS.items():
        grid = make()
        fwd = throughput(grid, args.points, args.repeats, "cpu", backward=False)
        both = throughput(grid, args.points, args.repeats, "cpu")
        print(f"{name:48s} {fwd / 1e6:15.3f} {both / 1e6:19.3f}")
    if not torch.cuda.is_available():
        print("CUDA: not available here; the torch vs tiny-cuda-nn comparison needs a GPU")
        return
    points = args.points * 16
    print(f"\nCUDA ({torch.cuda.get_device_name()}), {points} points, fwd+bwd Mpts/s")
    print(f"{'grid':48s} {'torch':>10s} {'tcnn':>10s} {'torch/tcnn':>11s}")
    for name, make in GRIDS.items():
        torch_rate = throughput(make().cuda(), points, args.repeats, "cuda")
        if tcnn_backend.available():
            try:
                tcnn_rate = throughput(make(backend="tcnn").cuda(), points, args.repeats, "cuda")
                ratio = f"{torch_rate / tcnn_rate:11.2f}"
                tcnn_text = f"{tcnn_rate / 1e6:10.2f}"
            except ValueError as exc:  # a grid tiny-cuda-nn cannot express
                tcnn_text, ratio = "n/a", str(exc)[:30]
        else:
            tcnn_text, ratio = "missing", f"  ({tcnn_backend.INSTALL_HINT.split()[0]} ...)"
        print(f"{name:48s} {torch_rate / 1e6:10.2f} {tcnn_text:>10s} {ratio}")


if __name__ == "__main__":
    main()
