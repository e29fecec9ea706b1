"""Per-frame audio features of any audio file: ``python -m talker.audio <audio> <out.npy> [--features mel|hubert|wav2vec2]``.

Writes the ``[N, 16, C]`` windows (``aud_mel.npy`` / ``aud_hu.npy`` / ``aud_eo.npy`` layout) of an
ffmpeg-readable file, e.g. to drive a trained model with speech it was not trained on. HuBERT and
wav2vec2 read their weights from ``--model`` (a local folder, or a hub name: the HF cache, filled on
first use unless offline).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from talker.audio import HuBERT, LogMel, Wav2Vec2, load_audio
from talker.errors import one_line_errors

EXTRACTORS = {"mel": LogMel, "hubert": HuBERT, "wav2vec2": Wav2Vec2}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m talker.audio", description=__doc__.splitlines()[0])
    parser.add_argument("audio", type=Path, help="any file ffmpeg can read (wav, mp3, mp4, ...)")
    parser.add_argument("out", type=Path, help="where to write the [N, 16, C] float32 windows (.npy)")
    parser.add_argument("--fps", type=int, default=25, help="video frame rate (default 25)")
    parser.add_argument("--features", choices=sorted(EXTRACTORS), default="mel", help="extractor (default mel: no weights)")
    parser.add_argument("--model", default=None, help="hubert / wav2vec2: local folder or hub name (default: the reference codebases')")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    with one_line_errors("python -m talker.audio"):
        extractor = LogMel() if args.features == "mel" else EXTRACTORS[args.features](args.model)
        windows = extractor(load_audio(args.audio), fps=args.fps)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        np.save(args.out, windows)
    print(f"{args.out}: {windows.shape[0]} frames x {windows.shape[1]} rows x {windows.shape[2]} features")


if __name__ == "__main__":
    main()
