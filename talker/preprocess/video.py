"""Decode a video at 25 fps (resampled by ffmpeg's ``fps`` filter) and its audio at 16 kHz mono.

Uses the ffmpeg binary that imageio-ffmpeg ships, so no system ffmpeg is needed.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from talker.audio import SAMPLE_RATE, AudioError, load_audio
from talker.errors import TalkerError

FPS = 25


class PreprocessError(TalkerError, ValueError):
    """Bad input or a failed step; the message is one line naming the file or the key."""


def probe(path: Path) -> tuple[int, int, float]:
    """``(width, height, duration in s)`` of a video's first video stream."""
    import imageio_ffmpeg

    if not path.is_file():
        raise PreprocessError(f"video={path}: file does not exist")
    try:
        frames = imageio_ffmpeg.read_frames(str(path))
        meta = next(frames)
        frames.close()
    except (OSError, RuntimeError, StopIteration) as exc:
        reason = str(exc).strip().splitlines()
        raise PreprocessError(f"video={path}: not a readable video ({reason[-1] if reason else type(exc).__name__})") from exc
    width, height = meta["size"]
    return int(width), int(height), float(meta.get("duration") or 0.0)


def output_size(width: int, height: int, size: int) -> tuple[int, int]:
    """Frame size with the shorter side scaled to ``size`` (0: keep), both even (what encoders want)."""
    if size <= 0:
        return width - width % 2, height - height % 2
    scale = size / min(width, height)
    return int(round(width * scale / 2)) * 2, int(round(height * scale / 2)) * 2


def decode_frames(path: Path, width: int, height: int, seconds: float | None = None) -> Iterator[np.ndarray]:
    """Yield ``[height, width, 3]`` uint8 frames at 25 fps (the first ``seconds`` only, if given)."""
    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(path)]
    if seconds:
        cmd += ["-t", f"{seconds:.3f}"]
    cmd += ["-an", "-vf", f"fps={FPS},scale={width}:{height}:flags=area", "-pix_fmt", "rgb24", "-f", "rawvideo", "-"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    frame_bytes = width * height * 3
    count = 0
    try:
        while True:
            data = proc.stdout.read(frame_bytes)
            if len(data) < frame_bytes:
                break
            count += 1
            yield np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)
    finally:
        proc.stdout.close()
        stderr = proc.stderr.read().decode(errors="replace").strip().splitlines()
        proc.wait()
    if proc.returncode != 0 or count == 0:
        raise PreprocessError(f"video={path}: ffmpeg cannot decode its frames ({stderr[-1] if stderr else 'no video frames'})")


def decode_audio(path: Path, num_frames: int, tolerance: float) -> np.ndarray:
    """The audio track at 16 kHz mono, cut or padded to exactly ``num_frames`` video frames.

    Raises :class:`PreprocessError` when there is no audio track or it ends more than
    ``tolerance`` seconds before the video (audio codecs often end a few ms early: that is padded).
    """
    try:
        audio = load_audio(path, SAMPLE_RATE)
    except AudioError as exc:
        raise PreprocessError(f"video={path}: no usable audio track ({exc})") from exc
    needed = num_frames * SAMPLE_RATE // FPS
    short = (needed - audio.shape[0]) / SAMPLE_RATE
    if short > tolerance:
        raise PreprocessError(
            f"video={path}: audio is {audio.shape[0] / SAMPLE_RATE:.2f} s but the video {num_frames / FPS:.2f} s "
            f"(shorter by more than audio_tolerance={tolerance} s)"
        )
    return np.pad(audio, (0, max(0, needed - audio.shape[0])))[:needed]
