"""Score a finished run, or any rendered frames, with the evaluator the training callback uses.

Two modes::

    python -m talker.evaluate run=<run folder> [checkpoint=<file>] [device=cpu|cuda] [speed=true] [resolution=450]
    python -m talker.evaluate frames=<image folder | video> [reference=<dataset | image folder | video>]
                              [split=val] [audio=<wav | video>] [out=<folder>] [tag.<key>=<value> ...]

``run=`` rebuilds the model from the run's resolved ``config.yaml``, loads its checkpoint, renders
the held-out frames and rewrites ``metrics.json`` (and frames.csv, renders/, mouth_strip.png);
rendering and scoring are deterministic, so two calls give the same numbers. ``speed=true`` also
rewrites ``speed.json`` (at ``resolution`` rows if given).

``frames=`` scores externally produced frames (e.g. Wav2Lip's video) with the same metrics; what
``reference``, ``audio``, ``out`` and ``tag.<key>=<value>`` mean is documented in
:mod:`talker.evaluation.external` (tags become columns in talker.reporting, e.g.
``tag.method=wav2lip tag.setting=cross_lingual``).

Any other ``key=value`` with a dot is a config override of the evaluator, e.g.
``callbacks.evaluation.evaluator.metrics.lpips.weights=/path/alexnet-owt-7be5be79.pth`` or
``callbacks.evaluation.evaluator.metrics.fid=null``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from talker.config_checks import cli_device, cli_value
from talker.errors import one_line_errors
from talker.evaluation import evaluate_frames, evaluate_run
from talker.runs import RunFolder
from talker.utils.cli import parse_arguments

USAGE = (
    "usage: python -m talker.evaluate run=<run folder> [checkpoint=<file>] [device=cpu|cuda] [speed=true] [resolution=<rows>]\n"
    "   or: python -m talker.evaluate frames=<folder|video> [reference=<dataset|folder|video>] [split=val] "
    "[audio=<wav|video>] [out=<folder>] [tag.<key>=<value> ...]"
)
RUN_KEYS = {"run", "checkpoint", "device", "speed", "resolution"}
FRAMES_KEYS = {"frames", "reference", "split", "audio", "out"}


def main(argv: list[str] | None = None) -> None:
    args, tags, overrides, bad = parse_arguments(sys.argv[1:] if argv is None else argv, RUN_KEYS | FRAMES_KEYS)
    mode = "run" if "run" in args else "frames" if "frames" in args else None
    allowed = RUN_KEYS if mode == "run" else FRAMES_KEYS
    unknown = sorted(set(args) - allowed) + bad + (sorted(f"tag.{k}" for k in tags) if mode == "run" else [])
    if mode is None or unknown:
        problem = f"not understood: {', '.join(unknown)}" if unknown else "run= or frames= is needed"
        print(f"talker.evaluate: error: {problem}; " + " | ".join(line.strip() for line in USAGE.splitlines()), file=sys.stderr)
        sys.exit(2)
    with one_line_errors("talker.evaluate"):
        if mode == "run":
            resolution = None
            if "resolution" in args:  # checked against the range of the config key it stands for
                resolution = cli_value("resolution", args["resolution"], "callbacks.evaluation.speed.resolution")
            speed = args.get("speed", "false").lower() in ("1", "true", "yes")
            device = cli_device("device", args.get("device"))
            summary = evaluate_run(args["run"], args.get("checkpoint"), device, speed, resolution, overrides)
            where = Path(args["run"])
        else:
            summary, where = evaluate_frames(
                args["frames"], args.get("reference"), args.get("split", "val"), args.get("audio"), args.get("out"), tags, overrides
            )
    print("[talker] " + ", ".join(f"{k}={v:.4f}" for k, v in summary.items()))
    print(f"[talker] wrote {RunFolder(where).metrics_file}")


if __name__ == "__main__":
    main()
