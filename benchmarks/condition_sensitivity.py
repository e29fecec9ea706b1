"""Does a trained head use its condition? Held-out mouth-box PSNR with each frame's own condition
against the same frames rendered with another held-out frame's condition, for one checkpoint.

    python benchmarks/condition_sensitivity.py <run folder> [checkpoint]

The evaluator writes the same figures to every run's metrics.json (``cond_gap_mouth``); this reads any
saved checkpoint (e.g. mid-training) and renders only the mouth boxes (``talker.evaluation.condition_gap``).
Every checkpoint of a run at once: benchmarks/hearing_curve.py. A head that ignores its condition
scores the same both ways; one that has learned the mouth loses dB with the wrong one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from talker.config import instantiate
from talker.evaluation import condition_gap
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
    datamodule.setup("validate")
    gap = condition_gap(module.head, datamodule.eval_frames())
    print(
        f"{args.run} step {state.get('global_step')}: held-out mouth-box PSNR with own condition {gap['psnr_mouth']:.2f} dB, "
        f"with another frame's {gap['psnr_mouth_other']:.2f} dB, gap {gap['cond_gap_mouth']:.2f} dB"
    )


if __name__ == "__main__":
    main()
