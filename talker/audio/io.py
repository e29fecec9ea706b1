"""Decode audio with the ffmpeg binary that imageio-ffmpeg ships (no system ffmpeg needed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
from scipy.io import wavfile

from talker.errors import TalkerError

SAMPLE_RATE = 16000  # every talking-head codebase extracts its audio features at 16 kHz


class AudioError(TalkerError, ValueError):
    """An audio file is missing or cannot be decoded; the message names the file."""


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Any ffmpeg-readable file (wav, mp3, flac, the audio track of an mp4, ...) -> float32 mono in [-1, 1].

    Channels are averaged and the signal is resampled by ffmpeg to ``sample_rate``.
    """
    import imageio_ffmpeg

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: audio file does not exist")
    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-nostdin",
        "-v",
        "error",
        "-i",
        str(path),
        "-vn",
        "-ac",
        "1",
        "-ar",
        str(sample_rate),
        "-f",
        "s16le",
        "-acodec",
        "pcm_s16le",
        "-",
    ]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        reason = proc.stderr.decode(errors="replace").strip().splitlines()
        raise AudioError(f"{path}: ffmpeg cannot decode it ({reason[-1] if reason else 'no message'})")
    samples = np.frombuffer(proc.stdout, dtype="<i2")
    if samples.size == 0:
        raise AudioError(f"{path}: no audio samples")
    return (samples.astype(np.float32) / 32768.0).copy()


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """float audio in [-1, 1] -> 16-bit PCM wav (what the reference codebases read as aud.wav)."""
    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)
    wavfile.write(str(path), sample_rate, pcm)
