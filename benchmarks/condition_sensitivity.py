"""Does a trained head use its condition? Held-out mouth-box PSNR with each frame's own condition
against the same frames rendered with another held-out frame's condition, for one checkpoint.

    python benchmarks/condition_sensitivity.py <run folder> [checkpoint] [--train]

The evaluator writes the same figures to every run's metrics.json (``cond_gap_mouth``); this reads any
saved checkpoint (e.g. mid-training) and renders only the mouth boxes (``talker.evaluation.condition_gap``).
Every checkpoint of a run at once: benchmarks/hearing_curve.py. A head that ignores its condition
scores the same both ways; one that has learned the mouth loses dB with the wrong one.

``--train`` also scores the training frames the same way (each paired with another training frame)
and prints how new the held-out mouths are: for each held-out frame, the distance from its canonical
mouth landmarks (68-point indices 48-67) to the nearest training frame's, against the same distance
between training frames more than two frames apart. A head that hears on training frames but not on
held-out ones has memorised its conditions; on a clip whose held-out mouths repeat training mouths
(ratio well below 1) the held-out gap cannot tell memorising from generalising.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from talker.config import instantiate
from talker.data.datamodule import Frames
from talker.data.landmarks import MOUTH
from talker.data.layout import Split
from talker.evaluation import condition_gap
from talker.runs import RunFolder

APART = 2  # training pairs closer in time than this many frames are neighbours, not repeats


def mouth_novelty(train: Split, held_out: Split) -> dict[str, float]:
    """Median distance from each held-out frame's canonical mouth landmarks to the nearest training
    frame's (``held_out_nn``), the same between training frames more than ``APART`` frames apart
    (``train_nn``), their ratio, and the median distance of a training mouth from the mean one (``spread``)."""

    def mouths(split: Split) -> torch.Tensor:
        ids = torch.as_tensor(split.aud_ids, dtype=torch.long)
        return split.landmarks[ids][:, MOUTH].reshape(len(ids), -1).double()

    ours, theirs = mouths(train), mouths(held_out)
    ids = torch.as_tensor(train.aud_ids, dtype=torch.long)
    within = torch.cdist(ours, ours).masked_fill((ids[:, None] - ids[None]).abs() <= APART, float("inf"))
    train_nn = within.min(dim=1).values.median().item()
    held_out_nn = torch.cdist(theirs, ours).min(dim=1).values.median().item()
    spread = (ours - ours.mean(dim=0)).norm(dim=1).median().item()
    return {"held_out_nn": held_out_nn, "train_nn": train_nn, "ratio": held_out_nn / train_nn, "spread": spread}


def describe(name: str, gap: dict[str, float]) -> str:
    return (
        f"{name} mouth-box PSNR with own condition {gap['psnr_mouth']:.2f} dB, "
        f"with another frame's {gap['psnr_mouth_other']:.2f} dB, gap {gap['cond_gap_mouth']:.2f} dB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a talker run folder (config.yaml, checkpoints/last.ckpt)")
    parser.add_argument("checkpoint", type=Path, nargs="?", help="default: <run>/checkpoints/last.ckpt")
    parser.add_argument("--train", action="store_true", help="also score the training frames and the held-out mouths' novelty")
    args = parser.parse_args()
    run = RunFolder(args.run)
    state = run.checkpoint(args.checkpoint)
    module = run.load_module(checkpoint=state)
    datamodule = instantiate(run.config().data, "data")
    datamodule.prepare_data()
    datamodule.setup("validate")
    print(f"{args.run} step {state.get('global_step')}:")
    print(describe("held-out", condition_gap(module.head, datamodule.eval_frames())))
    if args.train:
        print(describe("training", condition_gap(module.head, Frames(datamodule.train_split, datamodule.conditions))))
        novelty = mouth_novelty(datamodule.train_split, datamodule.val_split)
        print(
            f"held-out mouths: nearest training mouth {novelty['held_out_nn']:.4f} (median), training mouths "
            f"more than {APART} frames apart {novelty['train_nn']:.4f} (ratio {novelty['ratio']:.2f}); "
            f"training mouths from their mean {novelty['spread']:.4f} (nearest / spread {novelty['held_out_nn'] / novelty['spread']:.2f})"
        )


if __name__ == "__main__":
    main()
