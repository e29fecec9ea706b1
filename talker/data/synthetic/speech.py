"""Driving audio for the synthetic clip and the deterministic audio -> mouth mapping.

The mouth shape at each video frame is a fixed function of the audio in a 40 ms window around
it: loudness opens the mouth, the balance of high vs. low formant energy spreads ("ee") or rounds
("oo") it. Audio-conditioned and landmark-conditioned models therefore both have a real signal to
learn, and a model that ignores its condition cannot render the mouth.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import signal
from scipy.io import wavfile

SAMPLE_RATE = 16000
FPS = 25

# (F1, F2) formants of five vowels, Hz.
_VOWELS = np.array([[800, 1200], [500, 1900], [300, 2300], [500, 900], [320, 800]], dtype=np.float64)


def babble(duration: float, rng: np.random.Generator) -> np.ndarray:
    """Speech-like test signal: syllables of formant-filtered glottal pulses, with pauses.

    Used when no recording is given, so the embedded default dataset needs no external file.
    """
    n = int(round(duration * SAMPLE_RATE))
    out = np.zeros(n)
    t = 0.15
    while t < duration - 0.1:
        if rng.random() < 0.15:  # a pause between phrases
            t += rng.uniform(0.2, 0.5)
            continue
        length = rng.uniform(0.09, 0.26)
        start, stop = int(t * SAMPLE_RATE), min(n, int((t + length) * SAMPLE_RATE))
        m = stop - start
        f0 = rng.uniform(100, 210) * (1 + 0.08 * np.linspace(-1, 1, m) * rng.choice([-1, 1]))
        phase = np.cumsum(f0) / SAMPLE_RATE
        pulses = (np.diff(np.floor(phase), prepend=0) > 0).astype(np.float64)
        f1, f2 = _VOWELS[rng.integers(len(_VOWELS))] * rng.uniform(0.92, 1.08)
        voiced = np.zeros(m)
        for formant, bw, gain in ((f1, 90.0, 1.0), (f2, 120.0, 0.6)):
            r = np.exp(-np.pi * bw / SAMPLE_RATE)
            theta = 2 * np.pi * formant / SAMPLE_RATE
            voiced += gain * signal.lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], pulses)
        envelope = np.sin(np.linspace(0, np.pi, m)) ** 0.6 * rng.uniform(0.4, 1.0)
        out[start:stop] += voiced * envelope
        t += length + rng.uniform(0.0, 0.08)
    out += 0.002 * rng.standard_normal(n)
    return (0.5 * out / (np.abs(out).max() + 1e-9)).astype(np.float32)


def load_wav(path: str | Path, duration: float | None = None) -> np.ndarray:
    """Mono float32 audio at 16 kHz, looped or cut to ``duration`` seconds if given."""
    rate, raw = wavfile.read(str(path))
    data = raw.astype(np.float32)
    if np.issubdtype(raw.dtype, np.integer):
        data /= float(np.iinfo(raw.dtype).max) + 1.0
    if data.ndim == 2:
        data = data.mean(axis=1)
    if rate != SAMPLE_RATE:
        g = np.gcd(rate, SAMPLE_RATE)
        data = signal.resample_poly(data, SAMPLE_RATE // g, rate // g).astype(np.float32)
    if duration is not None:
        n = int(round(duration * SAMPLE_RATE))
        data = np.resize(data, n) if data.shape[0] < n else data[:n]
    return data


def mouth_track(audio: np.ndarray, num_frames: int, max_open: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Per-video-frame mouth opening (head units) and width factor from the audio around each frame.

    Returns ``open [num_frames]`` in ``[0, max_open]`` and ``width [num_frames]`` in ``[0.8, 1.2]``.
    """
    hop = SAMPLE_RATE // FPS
    window = 2 * hop  # 80 ms centred on the frame
    padded = np.pad(audio, (window // 2, window // 2))
    freqs = np.fft.rfftfreq(window, 1.0 / SAMPLE_RATE)
    low = (freqs > 250) & (freqs < 1300)
    high = (freqs > 1500) & (freqs < 3000)
    taper = np.hanning(window)
    loudness = np.zeros(num_frames)
    brightness = np.zeros(num_frames)
    for i in range(num_frames):
        chunk = padded[i * hop : i * hop + window]
        chunk = np.pad(chunk, (0, window - chunk.shape[0]))
        spec = np.abs(np.fft.rfft(chunk * taper)) ** 2
        loudness[i] = 10 * np.log10(np.mean(chunk**2) + 1e-10)
        brightness[i] = np.log10((spec[high].sum() + 1e-8) / (spec[low].sum() + 1e-8))
    peak = np.percentile(loudness, 98)
    opening = np.clip((loudness - (peak - 30.0)) / 30.0, 0.0, 1.0) ** 1.5
    width = 1.0 + 0.2 * np.tanh(1.5 * (brightness + 0.5))
    # Co-articulation: the mouth cannot jump between frames.
    kernel = np.array([0.25, 0.5, 0.25])
    opening = np.convolve(np.pad(opening, 1, mode="edge"), kernel, mode="valid")
    width = np.convolve(np.pad(width, 1, mode="edge"), kernel, mode="valid")
    width = np.where(opening > 0.05, width, 1.0)  # a closed mouth has its neutral width
    return max_open * opening, width
