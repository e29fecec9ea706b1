"""Score a finished run again: ``python -m talker.evaluate run=<run folder> [checkpoint=<file>]``.

Rebuilds the model from the run's resolved ``config.yaml``, loads its checkpoint, renders the
held-out frames and rewrites ``metrics.json`` (and frames.csv, renders/, mouth_strip.png) with the
same evaluator the training callback uses. Rendering is deterministic, so two calls give the same
numbers.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf

from talker.callbacks.evaluation import evaluate_module
from talker.config import ConfigError, instantiate
from talker.fit import LAST_CHECKPOINT, RESOLVED_CONFIG, build

USAGE = "usage: python -m talker.evaluate run=<run folder> [checkpoint=<file>] [device=cpu|cuda]"


def evaluate_run(run: str | Path, checkpoint: str | Path | None = None, device: str | None = None) -> dict:
    """Re-score the run folder ``run``; returns the summary metrics."""
    run = Path(run)
    config_file = run / RESOLVED_CONFIG
    if not config_file.is_file():
        raise ConfigError(f"{config_file}: missing; is {run} a talker run folder?")
    ckpt = Path(checkpoint) if checkpoint else run / LAST_CHECKPOINT
    if not ckpt.is_file():
        raise ConfigError(f"{ckpt}: checkpoint missing (train the run first, or pass checkpoint=<file>)")
    cfg = OmegaConf.load(config_file)
    cfg.run_dir = str(run)
    datamodule, module = build(cfg)
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    module.load_state_dict(state["state_dict"])
    module.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    datamodule.prepare_data()
    datamodule.setup("validate")
    evaluator = instantiate(cfg.callbacks.evaluation.evaluator, "callbacks.evaluation.evaluator")
    provenance = {
        "split": "val",
        "dataset": str(datamodule.dataset_dir()),
        "global_step": state.get("global_step"),
        "checkpoint": str(ckpt),
    }
    result, _ = evaluate_module(module, datamodule.eval_frames(), evaluator, run, provenance)
    return result.summary


def main(argv: list[str] | None = None) -> None:
    args = dict(a.split("=", 1) for a in (sys.argv[1:] if argv is None else argv) if "=" in a)
    unknown = set(args) - {"run", "checkpoint", "device"}
    if "run" not in args or unknown:
        print(f"talker.evaluate: error: {USAGE}" + (f" (unknown: {', '.join(sorted(unknown))})" if unknown else ""), file=sys.stderr)
        sys.exit(2)
    try:
        summary = evaluate_run(args["run"], args.get("checkpoint"), args.get("device"))
    except ConfigError as exc:
        print(f"talker.evaluate: error: {exc}", file=sys.stderr)
        sys.exit(2)
    print("[talker] " + ", ".join(f"{k}={v:.4f}" for k, v in summary.items()))


if __name__ == "__main__":
    main()
