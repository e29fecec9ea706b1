"""Does a trained head use its condition? Held-out mouth-box PSNR with each frame's own condition
against the same frames rendered with another held-out frame's condition (the split reversed).

    python benchmarks/condition_sensitivity.py <run folder> [checkpoint]

Cheaper than training a ``data.zero_condition=true`` arm (benchmarks/condition_matters.py): it reads
one run (any saved checkpoint, e.g. mid-training) and renders only the mouth boxes. A head that ignores
its condition scores the same both ways; one that has learned the mouth loses dB with the wrong one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from talker.config import instantiate
from talker.data.datamodule import RayBatches
from talker.data.landmarks import mouth_box
from talker.runs import RunFolder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a talker run folder (config.yaml, checkpoints/last.ckpt)")
    parser.add_argument("checkpoint", type=Path, nargs="?", help="default: <run>/checkpoints/last.ckpt")
    args = parser.parse_args()
    run = RunFolder(args.run)
    state = run.checkpoint(args.checkpoint)
    module = run.load_module(checkpoint=state)
    datamodule = instantiate(run.config().data, "data")
    datamodule.prepare_data()
    datamodule.setup("fit")
    split = datamodule.val_split
    rays_of = RayBatches(split, 1, datamodule.conditions)
    n = len(split)
    errors: dict[str, list[float]] = {"own": [], "other": []}
    for i in range(n):
        y0, y1, x0, x1 = mouth_box(split.lms[i], split.height, split.width)
        ys, xs = torch.meshgrid(torch.arange(y0, y1), torch.arange(x0, x1), indexing="ij")
        rays = rays_of.rays(i, torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=-1))
        other = n - 1 - i if n - 1 - i != i else (i + n // 2) % n
        for name, j in (("own", i), ("other", other)):
            with torch.no_grad():
                cond = datamodule.conditions.of_split(split, j)
                out = module.head.render(rays["rays_o"], rays["rays_d"], rays["background"], cond)
            errors[name].append(float(((out.rgb - rays["rgb"]) ** 2).mean()))
    psnr = {k: float(np.mean([-10 * np.log10(e) for e in v])) for k, v in errors.items()}
    print(
        f"{args.run} step {state.get('global_step')}: held-out mouth-box PSNR with own condition {psnr['own']:.2f} dB, "
        f"with another frame's {psnr['other']:.2f} dB, gap {psnr['own'] - psnr['other']:.2f} dB"
    )


if __name__ == "__main__":
    main()
