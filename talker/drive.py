"""Drive a trained model with new audio: ``python -m talker.drive run=<run folder> audio=<file> [motion=<run>]``.

- ``run`` a head run (``experiment=quickstart``, ...): renders one frame per 40 ms of audio, with the
  dataset's head poses played forwards and backwards and Gaussian-smoothed, over the dataset's
  torso-and-background frames; a landmark-conditioned head needs ``motion=<motion run>``
  (``python -m talker.fit experiment=motion`` on the same identity).
- ``run`` a motion (or post-net) run: the landmarks alone, drawn as a frontal point cloud video.

Writes ``<out>.mp4`` (H.264 + AAC, the audio muxed in, via imageio-ffmpeg) and
``<out>_landmarks.npy`` (``[N, 68, 3]`` driving landmarks); ``out`` defaults to
``<run>/drive/<audio stem>``. Other keys: ``device=cpu|cuda``, ``temperature=<float>`` (motion
sampling), ``smoothing=<frames>`` (landmark smoothing), ``pose_smoothing=<frames>``, ``seed=<int>``,
``inference.fast=true|false`` (frames on the fast rendering path, the default, or on the training
path) and ``inference.compile=true|false`` (the fast path with its hash-grid lookups through
``torch.compile``; default false: see docs/inference.md). The library is ``talker.inference``.
"""

from __future__ import annotations

import sys

from talker.config import ConfigError
from talker.config_checks import cli_device, cli_value
from talker.errors import one_line_errors
from talker.inference import drive

USAGE = (
    "usage: python -m talker.drive run=<run folder> audio=<file> [motion=<motion run folder>] [out=<path without suffix>] "
    "[device=cpu|cuda] [temperature=<t>] [smoothing=<frames>] [pose_smoothing=<frames>] [seed=<n>] "
    "[inference.fast=true|false] [inference.compile=true|false]"
)
SWITCHES = {"inference.fast": True, "inference.compile": False}  # key -> default
KEYS = {"run", "audio", "motion", "out", "device", "temperature", "smoothing", "pose_smoothing", "seed", *SWITCHES}


def switch(key: str, text: str | None) -> bool:
    """``true``/``false`` of a switch (its default when not given); anything else is a one-line error."""
    if text is None:
        return SWITCHES[key]
    if text.lower() not in ("true", "false"):
        raise ConfigError(f"{key}={text}: expected true or false")
    return text.lower() == "true"


def main(argv: list[str] | None = None) -> None:
    args, bad = {}, []
    for item in sys.argv[1:] if argv is None else argv:
        key, sep, value = item.partition("=")
        if sep and key in KEYS:
            args[key] = value
        else:
            bad.append(item)
    if bad or "run" not in args or "audio" not in args:
        problem = f"not understood: {', '.join(bad)}" if bad else "run= and audio= are needed"
        print(f"talker.drive: error: {problem}; {USAGE}", file=sys.stderr)
        sys.exit(2)
    # Numbers are checked against the ranges of the config keys they stand for (talker.config_checks).
    declared = {"temperature": "model.temperature", "smoothing": "model.smoothing_sigma",
                "pose_smoothing": "callbacks.cross_driven.pose_smoothing", "seed": "seed"}
    with one_line_errors("talker.drive"):
        numbers = {key: cli_value(key, args[key], declared[key]) for key in declared if key in args}
        video, landmarks = drive(
            args["run"],
            args["audio"],
            motion=args.get("motion"),
            out=args.get("out"),
            device=cli_device("device", args.get("device")),
            temperature=numbers.get("temperature"),
            smoothing=numbers.get("smoothing"),
            pose_smoothing=float(numbers.get("pose_smoothing", 2.0)),
            seed=int(numbers.get("seed", 0)),
            fast=switch("inference.fast", args.get("inference.fast")),
            compile=switch("inference.compile", args.get("inference.compile")),
        )
    print(f"[talker] wrote {video}" + (f" and {landmarks}" if landmarks.is_file() else ""))


if __name__ == "__main__":
    main()
