"""What the condition gap (``cond_gap_mouth``) adds to a run's evaluation: ``evaluate_run`` of one run
with the run's own evaluator and with ``...metrics.cond_gap=null``, alternating ``--repeats`` times in
one process (same load on both), the median of each kept.

    python benchmarks/condition_gap_cost.py <run folder> [--repeats 3]

Each call renders and scores every held-out frame and rewrites the run's metrics.json, frames.csv and
renders/ (the last call is the one with the gap, so the folder ends as the evaluator leaves it).
Prints seconds with and without, the difference per frame, and the gap.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from talker.evaluation import evaluate_run
from talker.runs import RunFolder

OFF = ["callbacks.evaluation.evaluator.metrics.cond_gap=null"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a trained run folder (config.yaml, checkpoints/last.ckpt)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"without": [], "with": []}
    summary: dict[str, float] = {}
    for _ in range(args.repeats):  # alternate, so that a change of load hits both alike; "with" last
        for name, overrides in (("without", OFF), ("with", [])):
            start = time.perf_counter()
            summary = evaluate_run(args.run, overrides=overrides)
            times[name].append(time.perf_counter() - start)
    frames = (RunFolder(args.run).metrics() or {}).get("num_frames", 0)
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"{args.run}: {frames} held-out frames, torch threads {torch.get_num_threads()}, {args.repeats} repeats")
    for name, seconds in median.items():
        print(f"  {name:8s} cond_gap {seconds:7.2f} s  (all: {', '.join(f'{t:.2f}' for t in times[name])})")
    extra = median["with"] - median["without"]
    print(f"  extra {extra:+.2f} s ({1000 * extra / max(frames, 1):+.1f} ms / frame, {100 * extra / median['without']:+.1f}%)")
    print(f"  psnr_mouth {summary['psnr_mouth']:.3f}, psnr_mouth_other {summary['psnr_mouth_other']:.3f}, "
          f"cond_gap_mouth {summary['cond_gap_mouth']:.3f} dB")


if __name__ == "__main__":
    main()
