"""Frames and audio of externally produced results: a folder of images or a video file, a wav or a video's track.

Video decoding uses the ffmpeg binary shipped by imageio-ffmpeg (no system ffmpeg needed).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.io import wavfile

from talker.errors import TalkerError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")


class MediaError(TalkerError, ValueError):
    """Unreadable or missing media; the message names the file."""


def _numeric(stem: str) -> int | None:
    match = re.fullmatch(r"\D*?(\d+)", stem)
    return int(match.group(1)) if match else None


def list_frames(folder: str | Path) -> list[tuple[int, Path]]:
    """Images of ``folder`` as ``(frame id, path)``; ids are the numbers in the names (``12.png``,
    ``frame_0012.jpg``) when every name has one, else positions in name order."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise MediaError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    numbers = [_numeric(p.stem) for p in files]
    if all(n is not None for n in numbers) and len(set(numbers)) == len(numbers):
        return sorted(zip(numbers, files))
    return list(enumerate(files))


def read_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise MediaError(f"{path}: not a readable image ({exc})") from exc


def read_video(path: str | Path) -> tuple[list[np.ndarray], float]:
    """All frames of a video as uint8 ``[H, W, 3]`` and its frame rate."""
    import imageio.v2 as imageio

    try:
        reader = imageio.get_reader(str(path), format="FFMPEG")
        fps = float(reader.get_meta_data().get("fps", 25.0))
        frames = [np.asarray(frame) for frame in reader]
        reader.close()
    except (OSError, RuntimeError, ValueError) as exc:
        raise MediaError(f"{path}: not a readable video ({exc})") from exc
    if not frames:
        raise MediaError(f"{path}: no video frames")
    return frames, fps


def read_audio(path: str | Path, sample_rate: int = 16000) -> np.ndarray:
    """Mono float audio in [-1, 1] at ``sample_rate``: a wav file read directly, anything else
    (a video's audio track) decoded by ffmpeg."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: audio file missing")
    if path.suffix.lower() == ".wav":
        try:
            rate, raw = wavfile.read(str(path))
        except ValueError as exc:
            raise MediaError(f"{path}: not a readable wav ({exc})") from exc
        data = raw.astype(np.float64)
        if np.issubdtype(raw.dtype, np.integer):
            data /= float(np.iinfo(raw.dtype).max) + 1.0
        if data.ndim == 2:
            data = data.mean(axis=1)
        if rate != sample_rate:
            from scipy.signal import resample_poly

            g = np.gcd(int(rate), sample_rate)
            data = resample_poly(data, sample_rate // g, int(rate) // g)
        return data
    from talker.audio.io import AudioError, load_audio

    try:  # 16-bit samples: exact in float32, returned in float64 as the wav branch
        return load_audio(path, sample_rate).astype(np.float64)
    except AudioError as exc:
        raise MediaError(f"no decodable audio: {exc}") from exc
