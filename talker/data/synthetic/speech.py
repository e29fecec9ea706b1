"""Driving audio of the synthetic clip, and the deterministic audio -> mouth mapping.

Audio sources (``SyntheticClip.audio``):

- ``None``: built-in formant speech in the identity's voice (no file or program needed);
- ``"babble:<voice>"``: the same in another voice (``identity.VOICES``);
- ``"espeak:<voice>:<text>"``: text-to-speech with espeak-ng (``apt-get install espeak-ng``), e.g.
  ``espeak:en-us:Hello there``, ``espeak:fr+f3:Bonjour``, ``espeak:de:Guten Tag``;
- anything else: a path to an audio or video file ffmpeg can read (resampled to 16 kHz mono).

The audio is fitted to the clip's duration (cut, or repeated with short pauses) and normalised to a
fixed level; that is what aud.wav holds. The mouth at video frame ``i`` is then a fixed function of
aud.wav's log-mel rows around ``t = i / 25`` s (:func:`visemes`): loudness opens it, the balance of
high (F2 of "ee") against low (F1 / F2 of "oo") formant energy spreads or rounds it. The rows used lie
inside the frame's 16-row feature window (``aud_mel.npy``), so an audio-conditioned model sees
everything the mouth depends on, and a model that ignores its condition cannot render the mouth.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from scipy import signal

from talker.audio import SAMPLE_RATE, AudioError, LogMel, load_audio
from talker.data.synthetic.identity import VOICES, Voice

LEVEL = 0.1  # RMS of the loud frames after normalisation
# (F1, F2, F3) of a, e, i, o, u and schwa, Hz (an adult male tract; a voice scales them).
VOWELS = np.array(
    [
        [730, 1090, 2440],
        [530, 1840, 2480],
        [270, 2290, 3010],
        [570, 840, 2410],
        [300, 870, 2240],
        [500, 1500, 2500],
    ],
    dtype=np.float64,
)


def _resonate(excitation: np.ndarray, freq: float, bandwidth: float) -> np.ndarray:
    r = np.exp(-np.pi * bandwidth / SAMPLE_RATE)
    theta = 2 * np.pi * freq / SAMPLE_RATE
    return signal.lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], excitation)


def babble(duration: float, rng: np.random.Generator, voice: Voice) -> np.ndarray:
    """Speech-like signal: syllables of an optional consonant (stop closure + burst, or fricative noise)
    and a vowel (glottal pulses through three formant resonators), grouped into phrases by pauses."""
    n = int(round(duration * SAMPLE_RATE))
    out = np.zeros(n)
    t = 0.15
    while t < duration - 0.1:
        if rng.random() < voice.pause_probability:
            t += rng.uniform(0.15, 0.5)
            continue
        kind = rng.choice(["none", "stop", "fricative"], p=[0.35, 0.35, 0.3])
        if kind == "stop":  # closure (silence), then a short noise burst
            t += rng.uniform(0.04, 0.08)
            a = int(t * SAMPLE_RATE)
            burst = rng.standard_normal(min(n - a, int(0.012 * SAMPLE_RATE))) * np.hanning(
                min(n - a, int(0.012 * SAMPLE_RATE))
            )
            out[a : a + burst.shape[0]] += 0.25 * burst
            t += 0.012
        elif kind == "fricative":  # band-passed noise: "s", "sh" or "f"
            length = rng.uniform(0.06, 0.12)
            a, b = int(t * SAMPLE_RATE), min(n, int((t + length) * SAMPLE_RATE))
            low, high = [(4000, 7500), (2000, 5000), (1000, 7000)][rng.integers(3)]
            sos = signal.butter(4, [low, high], btype="band", fs=SAMPLE_RATE, output="sos")
            noise = signal.sosfilt(sos, rng.standard_normal(b - a)) * np.hanning(b - a)
            out[a:b] += rng.uniform(0.15, 0.35) * noise / (np.abs(noise).max() + 1e-9)
            t += length
        length = rng.uniform(*voice.syllable_seconds)
        a, b = int(t * SAMPLE_RATE), min(n, int((t + length) * SAMPLE_RATE))
        m = b - a
        if m <= 0:
            break
        f0 = rng.uniform(*voice.f0) * (1 + 0.1 * np.linspace(-1, 1, m) * rng.choice([-1, 1]))
        phase = np.cumsum(f0) / SAMPLE_RATE
        pulses = (np.diff(np.floor(phase), prepend=0) > 0).astype(np.float64)
        formants = VOWELS[rng.integers(len(VOWELS))] * voice.formant_scale * rng.uniform(0.94, 1.06)
        voiced = sum(
            g * _resonate(pulses, f, bw) for f, bw, g in zip(formants, (80.0, 100.0, 140.0), (1.0, 0.7, 0.35))
        )
        envelope = np.sin(np.linspace(0, np.pi, m)) ** 0.5 * rng.uniform(0.45, 1.0)
        out[a:b] += voiced * envelope
        t += length + rng.uniform(0.0, 0.06)
    out += 0.001 * rng.standard_normal(n)
    return out.astype(np.float32)


def espeak(voice: str, text: str) -> np.ndarray:
    """Text-to-speech with espeak-ng, decoded to 16 kHz mono."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise AudioError(f"espeak:{voice}:{text}: espeak-ng is not installed (apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        proc = subprocess.run(
            [exe, "-v", voice, "-w", str(path), text], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0 or not path.is_file():
            raise AudioError(
                f"espeak:{voice}:{text}: espeak-ng failed ({proc.stderr.strip() or proc.returncode})"
            )
        return load_audio(path)


def describe(source: str | None, default_voice: str) -> str:
    """A readable name of an audio source (for the manifest)."""
    return f"babble:{default_voice}" if source is None else source


def driving_audio(
    source: str | None, duration: float, rng: np.random.Generator, default_voice: str
) -> np.ndarray:
    """The clip's audio: ``duration`` seconds at 16 kHz, normalised (see the module docstring)."""
    source = describe(source, default_voice)
    if source.startswith("babble:"):
        name = source.split(":", 1)[1]
        if name not in VOICES:
            raise AudioError(f"audio={source}: unknown voice {name!r}; choices: {sorted(VOICES)}")
        audio = babble(duration, rng, VOICES[name])
    elif source.startswith("espeak:"):
        parts = source.split(":", 2)
        if len(parts) != 3 or not parts[1] or not parts[2].strip():
            raise AudioError(f"audio={source}: expected espeak:<voice>:<text>, e.g. espeak:en-us:Hello there")
        audio = espeak(parts[1], parts[2])
    else:
        audio = load_audio(source)
    return normalise(fit_duration(audio, int(round(duration * SAMPLE_RATE))))


def fit_duration(audio: np.ndarray, num_samples: int, gap_seconds: float = 0.3) -> np.ndarray:
    """Cut to ``num_samples``, or repeat with ``gap_seconds`` of silence in between until long enough."""
    if audio.shape[0] >= num_samples:
        return audio[:num_samples]
    unit = np.concatenate([audio, np.zeros(int(gap_seconds * SAMPLE_RATE), dtype=audio.dtype)])
    return np.tile(unit, num_samples // unit.shape[0] + 1)[:num_samples]


def normalise(audio: np.ndarray) -> np.ndarray:
    """Scale so that the loud 20 ms frames (95th percentile of frame RMS) sit at :data:`LEVEL`."""
    audio = audio - audio.mean()
    hop = SAMPLE_RATE // 50
    frames = audio[: audio.shape[0] // hop * hop].reshape(-1, hop)
    level = np.percentile(np.sqrt((frames.astype(np.float64) ** 2).mean(-1)), 95) if frames.size else 0.0
    if level < 1e-6:
        raise AudioError("driving audio is silent")
    return np.clip(audio * (LEVEL / level), -1.0, 1.0).astype(np.float32)


# -- audio -> mouth ----------------------------------------------------------------------------

QUIET_DB, LOUD_DB = -25.0, 8.0  # loudness of the mel rows mapped to a closed / fully open mouth
TILT_NEUTRAL = -1.8  # log10(high / low formant energy) of a neutral vowel
MAX_OPEN = 0.095  # inner-lip gap of the widest opening, head units


def visemes(audio: np.ndarray, num_frames: int, mel: LogMel | None = None) -> dict[str, np.ndarray]:
    """Mouth opening, width and rounding per video frame from the log-mel rows around each frame.

    Uses rows ``2i - 4 ... 2i + 4`` of frame ``i`` (a subset of its ``aud_mel.npy`` window).
    """
    mel = mel or LogMel()
    rows = mel.rows(audio).astype(np.float64)  # [M, C] log10 mel power
    power = 10.0**rows
    freqs = mel.centre_frequencies
    loud = 10 * np.log10(power[:, (freqs > 80) & (freqs < 5000)].sum(-1) + 1e-10)
    low = power[:, (freqs > 250) & (freqs < 1000)].sum(-1)
    high = power[:, (freqs > 1400) & (freqs < 3500)].sum(-1)
    tilt = np.log10((high + 1e-10) / (low + 1e-10))
    kernel = np.array([1.0, 2.0, 3.0, 2.0, 1.0]) / 9.0  # 100 ms of co-articulation
    loud = np.convolve(np.pad(loud, 2, mode="edge"), kernel, mode="valid")
    tilt = np.convolve(np.pad(tilt, 2, mode="edge"), kernel, mode="valid")
    centre = np.minimum(2 * np.arange(num_frames), rows.shape[0] - 1)
    level = np.clip((loud[centre] - QUIET_DB) / (LOUD_DB - QUIET_DB), 0.0, 1.0)
    voiced = np.clip(3.0 * level, 0.0, 1.0)
    opening = MAX_OPEN * level
    width = 1.0 + 0.2 * np.tanh(1.5 * (tilt[centre] - TILT_NEUTRAL)) * voiced
    rounding = np.clip(-0.8 * (tilt[centre] - TILT_NEUTRAL), 0.0, 1.0) * voiced
    smooth = np.array([0.25, 0.5, 0.25])  # the lips cannot jump between frames

    def filt(x: np.ndarray) -> np.ndarray:
        return np.convolve(np.pad(x, 1, mode="edge"), smooth, mode="valid")

    return {"mouth_open": filt(opening), "mouth_width": filt(width), "mouth_round": filt(rounding)}
