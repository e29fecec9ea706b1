"""What the temporal-stability metrics and AUE cost: the evaluator on one run's held-out renders with
the image and lip metrics alone, then with jitter, flicker, seam and AUE added, side by side in one
process (same frames; the sets alternate ``--repeats`` times, the median of each kept). MediaPipe
detects each frame once for LMD, jitter and AUE together.

    python benchmarks/stability_metrics.py <run folder> [--landmarker models/face_landmarker.task] [--repeats 3]

The run's renders/ are scored against its dataset's held-out frames, as ``talker.evaluate frames=``
would score them. Prints seconds per set, per frame and the ratio, and the stability values.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from talker.evaluation.scoring import dataset_context
from talker.data.layout import load_split
from talker.metrics import AUE, LMD, PSNR, SSIM, EvalFrame, Evaluator, Flicker, LandmarkJitter, NeckSeam
from talker.utils.media import list_frames, read_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a scored run folder (metrics.json, renders/)")
    parser.add_argument("--landmarker", type=Path, default=Path(os.environ.get("TALKER_MODELS_DIR", "models")) / "face_landmarker.task")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    dataset = Path(json.loads((args.run / "metrics.json").read_text())["dataset"])
    split = load_split(dataset, "val")
    renders = dict(list_frames(args.run / "renders"))
    frames = [
        EvalFrame(int(i), torch.from_numpy(read_image(renders[int(i)]).copy()).float() / 255, split.images[k].float() / 255,
                  split.lms[k], int(split.aud_ids[k]))
        for k, i in enumerate(split.img_ids.tolist())
    ]
    context = dataset_context(dataset)
    sets = {
        "image + lip (psnr, ssim, lmd)": lambda: [PSNR(), SSIM(), LMD(args.landmarker)],
        "+ jitter, flicker, seam, aue": lambda: [PSNR(), SSIM(), LMD(args.landmarker), LandmarkJitter(args.landmarker),
                                                 Flicker(), NeckSeam(), AUE(args.landmarker)],
    }
    built = {name: make() for name, make in sets.items()}
    for metrics in built.values():
        Evaluator(metrics).evaluate(frames[:3], context)  # load the models once, outside the timing
    runs: dict[str, list[float]] = {name: [] for name in built}
    summary: dict[str, float] = {}
    for _ in range(args.repeats):  # the sets alternate, so a change of load hits both alike
        for name, metrics in built.items():
            start = time.perf_counter()
            summary = Evaluator(metrics).evaluate(frames, context).summary
            runs[name].append(time.perf_counter() - start)
    times = {name: statistics.median(values) for name, values in runs.items()}
    base, full = times.values()
    print(f"{args.run}: {len(frames)} held-out frames, {split.width} x {split.height}, torch threads {torch.get_num_threads()}")
    for name, seconds in times.items():
        print(f"  {name:32s} {seconds:7.2f} s  ({1000 * seconds / len(frames):6.1f} ms / frame)")
    print(f"  ratio {full / base:.2f}x (+{full - base:.2f} s)")
    keys = [k for k in summary if k.split("_")[0] in ("jitter", "flicker", "seam", "aue")]
    print("  " + ", ".join(f"{k}={summary[k]:.4f}" for k in keys))


if __name__ == "__main__":
    main()
