"""Does a pre-trained start make a new person cheap? Held-out PSNR against the step for runs of one person.

    python benchmarks/transfer_curve.py <from-scratch run> <pre-trained run> [more runs] [--frames 8] [--out DIR]

For each run (``experiment=lokitalk_transfer``'s cells: the same person, schedule and rates, from scratch or
``init_from`` a multi-identity pre-training; checkpoints every 100 steps), scores the model at step 0 (as the
run began: a fresh model, or the pre-training's weights with the person's first frame read by the ID
encoder, rebuilt exactly as ``talker.fit`` did) and at every kept checkpoint: PSNR of the whole frame and
of the mouth box (``talker.metrics.PSNR``, the evaluator's regions) over ``--frames`` evenly spaced held-out
frames. Writes ``transfer_curve.csv`` and ``transfer_curve.png`` into ``--out`` (default: the first run's
parent), and prints, for each run, the first step at which it reaches the first run's final PSNR: the
paper's claim (LokiTalk Sec. 3.3) is that the pre-trained run gets there in fewer steps.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import lightning as L
import torch

from talker.config import ConfigError, instantiate
from talker.data.datamodule import Frames
from talker.evaluation.heldout import render_item
from talker.fit import init_run, start_from
from talker.metrics import EvalFrame
from talker.metrics.psnr import PSNR
from talker.runs import RunFolder
from talker.utils.io import write_csv

METRICS = ("psnr", "psnr_mouth")


@torch.no_grad()
def score(module: L.LightningModule, frames: Frames, indices: list[int]) -> dict[str, float]:
    """Mean over ``indices`` of the held-out frames' PSNR and mouth-box PSNR."""
    module.eval()
    metric = PSNR()
    for i in indices:
        item = frames[i]
        metric.update(EvalFrame(frame_id=item["img_id"], pred=render_item(module.head, item), target=item["image"], landmarks=item["lms"]))
    return {key: statistics.fmean(metric.values[key]) for key in METRICS}


def starting_module(run: RunFolder) -> L.LightningModule:
    """The run's model at step 0, as ``talker.fit`` built it (same seed, ``init_from`` applied)."""
    cfg = run.config()
    L.seed_everything(cfg.seed, verbose=False)
    datamodule = instantiate(cfg.data, "data")
    module = instantiate(cfg.model, "model")
    if cfg.init_from:
        start_from(module, datamodule, init_run(cfg))
    else:
        datamodule.prepare_data()
        datamodule.setup("fit")
        module.head.prepare(datamodule.train_conditions())  # what on_fit_start does before step 0
    return module


def curve(run: RunFolder, frames: int, device: str) -> list[dict[str, float | int | str]]:
    """One row per scored step of ``run``: step 0, then every distinct checkpoint step."""
    cfg = run.config()
    datamodule = instantiate(cfg.data, "data")
    datamodule.prepare_data()
    datamodule.setup("validate")
    held_out = datamodule.eval_frames()
    indices = sorted({round(k * (len(held_out) - 1) / max(frames - 1, 1)) for k in range(frames)})
    states = {}
    for path in sorted(run.saved_checkpoints(), key=lambda p: p.name.startswith("last")):  # last repeats a kept step
        state = run.checkpoint(path)
        states.setdefault(int(state["global_step"]), state)
    models = [(0, lambda: starting_module(run).to(device))]
    models += [(step, lambda state=states[step]: run.load_module(cfg, state, device)) for step in sorted(states) if step > 0]
    rows = []
    for step, load in models:
        started = time.perf_counter()
        values = score(load(), held_out, indices)
        rows.append({"run": run.path.name, "step": step, **values})
        print(f"{run.path.name} step {step}: PSNR {values['psnr']:.2f} dB, mouth {values['psnr_mouth']:.2f} dB "
              f"({len(indices)} frames, {time.perf_counter() - started:.0f} s)", flush=True)
    return rows


def steps_to_reach(rows: list[dict], target: float) -> int | None:
    """The first scored step whose PSNR is at least ``target`` (None: never)."""
    return next((int(r["step"]) for r in rows if r["psnr"] >= target), None)


def plot(curves: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, key, label in zip(axes, METRICS, ("held-out PSNR (dB)", "held-out mouth-box PSNR (dB)")):
        for name, rows in curves.items():
            ax.plot([r["step"] for r in rows], [r[key] for r in rows], marker="o", label=name[:40])
        ax.set_xlabel("step")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="run folders; the first is the reference (from scratch)")
    parser.add_argument("--frames", type=int, default=8, help="held-out frames scored per step")
    parser.add_argument("--out", type=Path, default=None, help="folder for transfer_curve.csv/.png")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    try:
        curves = {str(path): curve(RunFolder(path), args.frames, args.device) for path in args.runs}
    except (ConfigError, ValueError) as exc:
        sys.exit(f"transfer_curve: {exc}")
    out = args.out or args.runs[0].parent
    write_csv(out / "transfer_curve.csv", [row for rows in curves.values() for row in rows])
    plot({Path(name).name: rows for name, rows in curves.items()}, out / "transfer_curve.png")
    reference = list(curves.values())[0]
    target = reference[-1]["psnr"]
    print(f"\nthe first run's final PSNR: {target:.2f} dB (step {reference[-1]['step']})")
    for name, rows in curves.items():
        reached = steps_to_reach(rows, target)
        print(f"  {Path(name).name}: reaches it at step {reached if reached is not None else 'never (within its steps)'}; "
              f"final {rows[-1]['psnr']:.2f} dB, mouth {rows[-1]['psnr_mouth']:.2f} dB")
    print(f"wrote {out / 'transfer_curve.csv'} and {out / 'transfer_curve.png'}")


if __name__ == "__main__":
    main()
