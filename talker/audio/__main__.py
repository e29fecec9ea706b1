"""Per-frame audio features of any audio file: ``python -m talker.audio <audio> <out.npy> [--fps 25]``.

Writes the ``[N, 16, 80]`` log-mel windows (``aud_mel.npy`` layout) of an ffmpeg-readable file, e.g.
to drive a trained model with speech it was not trained on.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from talker.audio import AudioError, LogMel, load_audio


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m talker.audio", description=__doc__.splitlines()[0])
    parser.add_argument("audio", type=Path, help="any file ffmpeg can read (wav, mp3, mp4, ...)")
    parser.add_argument("out", type=Path, help="where to write the [N, 16, 80] float32 windows (.npy)")
    parser.add_argument("--fps", type=int, default=25, help="video frame rate (default 25)")
    args = parser.parse_args(argv)
    try:
        windows = LogMel()(load_audio(args.audio), fps=args.fps)
    except AudioError as exc:
        print(f"python -m talker.audio: error: {exc}", file=sys.stderr)
        sys.exit(2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.save(args.out, windows)
    print(f"{args.out}: {windows.shape[0]} frames x {windows.shape[1]} rows x {windows.shape[2]} mel bands")


if __name__ == "__main__":
    main()
