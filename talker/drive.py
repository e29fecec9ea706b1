"""Drive a trained model with new audio: ``python -m talker.drive run=<run folder> audio=<file> [motion=<run>]``.

- ``run`` a head run (``experiment=quickstart``, ...): renders one frame per 40 ms of audio, with the
  dataset's head poses played forwards and backwards and Gaussian-smoothed, over the dataset's
  torso-and-background frames; a landmark-conditioned head needs ``motion=<motion run>``
  (``python -m talker.fit experiment=motion`` on the same identity).
- ``run`` a motion (or post-net) run: the landmarks alone, drawn as a frontal point cloud video.

Writes ``<out>.mp4`` (H.264 + AAC, the audio muxed in, via imageio-ffmpeg) and
``<out>_landmarks.npy`` (``[N, 68, 3]`` driving landmarks); ``out`` defaults to
``<run>/drive/<audio stem>``. Other keys: ``device=cpu|cuda``, ``temperature=<float>`` (motion
sampling), ``smoothing=<frames>`` (landmark smoothing), ``pose_smoothing=<frames>``, ``seed=<int>``.
The library is ``talker.inference``.
"""

from __future__ import annotations

import sys

from talker.config import ConfigError
from talker.inference import drive

USAGE = (
    "usage: python -m talker.drive run=<run folder> audio=<file> [motion=<motion run folder>] [out=<path without suffix>] "
    "[device=cpu|cuda] [temperature=<t>] [smoothing=<frames>] [pose_smoothing=<frames>] [seed=<n>]"
)
KEYS = {"run", "audio", "motion", "out", "device", "temperature", "smoothing", "pose_smoothing", "seed"}


def main(argv: list[str] | None = None) -> None:
    args, bad = {}, []
    for item in sys.argv[1:] if argv is None else argv:
        key, sep, value = item.partition("=")
        if sep and key in KEYS:
            args[key] = value
        else:
            bad.append(item)
    if bad or "run" not in args or "audio" not in args:
        extra = f"\n(not understood: {', '.join(bad)})" if bad else ""
        print(f"talker.drive: error: {USAGE}{extra}", file=sys.stderr)
        sys.exit(2)
    try:
        video, landmarks = drive(
            args["run"],
            args["audio"],
            motion=args.get("motion"),
            out=args.get("out"),
            device=args.get("device"),
            temperature=float(args["temperature"]) if "temperature" in args else None,
            smoothing=float(args["smoothing"]) if "smoothing" in args else None,
            pose_smoothing=float(args.get("pose_smoothing", 2.0)),
            seed=int(args.get("seed", 0)),
        )
    except ConfigError as exc:
        print(f"talker.drive: error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(f"[talker] wrote {video}" + (f" and {landmarks}" if landmarks.is_file() else ""))


if __name__ == "__main__":
    main()
