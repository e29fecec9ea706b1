"""When does a run start to use its condition? The held-out mouth-box condition gap at every saved checkpoint.

    python benchmarks/hearing_curve.py <run folder> [--device cpu]

For each checkpoint of the run (``checkpoints/*.ckpt``; train with ``callbacks=[default,history]`` to
keep one every 200 steps), renders the held-out mouth boxes with each frame's own condition and with
another held-out frame's (``talker.evaluation.condition_gap``, the evaluator's ``cond_gap_mouth``) and
writes ``hearing_curve.csv`` (step, psnr_mouth_own, psnr_mouth_other, gap) and ``hearing_curve.png``
(gap against step, with the threshold below which tables mark a head as not using its condition) into
the run folder. Checkpoints of the same step (``last.ckpt`` and the last kept one) count once.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from talker.config import ConfigError, instantiate
from talker.evaluation import condition_gap
from talker.reporting.tables import HEARING_THRESHOLD_DB
from talker.runs import RunFolder
from talker.utils.io import write_csv


def hearing_curve(run: RunFolder, device: str = "cpu") -> list[dict[str, float]]:
    """One row per distinct step among the run's checkpoints, by step; progress printed per checkpoint."""
    cfg = run.config()
    files = run.saved_checkpoints()
    if not files:
        raise ConfigError(f"{run.path / RunFolder.CHECKPOINTS}: no checkpoints (*.ckpt); train with callbacks=[default,history]")
    datamodule = instantiate(cfg.data, "data")
    datamodule.prepare_data()
    datamodule.setup("validate")
    frames = datamodule.eval_frames()
    states = {}
    for path in sorted(files, key=lambda p: p.name.startswith("last")):  # last.ckpt repeats a kept step
        state = run.checkpoint(path)
        states.setdefault(int(state["global_step"]), (path, state))
    rows = []
    for i, step in enumerate(sorted(states)):
        path, state = states[step]
        start = time.perf_counter()
        module = run.load_module(cfg, state, device)
        gap = condition_gap(module.head, frames)
        rows.append({"step": step, "psnr_mouth_own": gap["psnr_mouth"], "psnr_mouth_other": gap["psnr_mouth_other"], "gap": gap["cond_gap_mouth"]})
        print(
            f"[{i + 1}/{len(states)}] {path.name} step {step}: mouth-box PSNR own {gap['psnr_mouth']:.2f} dB, "
            f"other {gap['psnr_mouth_other']:.2f} dB, gap {gap['cond_gap_mouth']:.2f} dB ({time.perf_counter() - start:.1f} s)",
            flush=True,
        )
    return rows


def plot(rows: list[dict[str, float]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([r["step"] for r in rows], [r["gap"] for r in rows], marker="o", label="cond_gap_mouth")
    ax.axhline(HEARING_THRESHOLD_DB, color="grey", linestyle="--", label=f"{HEARING_THRESHOLD_DB:g} dB: below, marked deaf")
    ax.set_xlabel("step")
    ax.set_ylabel("held-out mouth-box gap (dB)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a talker run folder (config.yaml, checkpoints/*.ckpt)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    run = RunFolder(args.run)
    try:
        rows = hearing_curve(run, args.device)
    except (ConfigError, ValueError) as exc:
        sys.exit(f"hearing_curve: {exc}")
    write_csv(run.path / RunFolder.HEARING_CURVE, rows)
    plot(rows, run.path / RunFolder.HEARING_CURVE_PLOT, str(run.path))
    print(f"wrote {run.path / RunFolder.HEARING_CURVE} and {run.path / RunFolder.HEARING_CURVE_PLOT}")


if __name__ == "__main__":
    main()
