"""Driving audio sources and the audio -> mouth mapping."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from talker.audio import SAMPLE_RATE, AudioError, LogMel
from talker.data.synthetic import SyntheticClip
from talker.data.synthetic.identity import VOICES
from talker.data.synthetic.speech import babble, driving_audio, fit_duration, visemes

FPS = 25


def vowel(seconds: float, f1: float, f2: float, f0: float = 140.0) -> np.ndarray:
    """A steady synthetic vowel (harmonics of f0 shaped by two formant peaks)."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    out = np.zeros_like(t)
    for k in range(1, int(4000 / f0)):
        f = k * f0
        out += (np.exp(-(((f - f1) / 120) ** 2)) + 0.8 * np.exp(-(((f - f2) / 150) ** 2)) + 0.02) * np.sin(
            2 * np.pi * f * t
        )
    return (0.3 * out / np.abs(out).max()).astype(np.float32)


def test_loud_speech_opens_the_mouth_and_silence_closes_it() -> None:
    audio = np.concatenate(
        [np.zeros(SAMPLE_RATE, np.float32), vowel(1.0, 730, 1090), np.zeros(SAMPLE_RATE, np.float32)]
    )
    mouth = visemes(audio, 75)
    assert mouth["mouth_open"][5:20].max() < 1e-3  # silence
    assert mouth["mouth_open"][32:43].min() > 0.03  # the vowel
    assert mouth["mouth_open"][55:].max() < 1e-3


def test_ee_spreads_and_oo_rounds_the_lips() -> None:
    ee, oo = visemes(vowel(1.0, 300, 2300), 25), visemes(vowel(1.0, 320, 800), 25)
    assert ee["mouth_width"][5:20].mean() > 1.1 and ee["mouth_round"][5:20].max() < 0.05
    assert oo["mouth_width"][5:20].mean() < 0.95 and oo["mouth_round"][5:20].mean() > 0.3


def test_mouth_depends_only_on_the_audio_around_the_frame() -> None:
    rng = np.random.default_rng(0)
    audio = babble(4.0, rng, VOICES["mid"])
    changed = audio.copy()
    changed[int(2.5 * SAMPLE_RATE) :] = 0.0  # silence from 2.5 s on
    a, b = visemes(audio, 100), visemes(changed, 100)
    # Frame i uses rows 2i-4 .. 2i+4 (+- 80 ms, plus the 12.5 ms row half-width): frames up to 2.4 s are unchanged.
    for key in a:
        np.testing.assert_array_equal(a[key][:59], b[key][:59])
        assert not np.array_equal(a[key][63:], b[key][63:])
    window = LogMel()(audio, num_frames=100)  # every row the mouth uses is inside the frame's feature window
    assert window.shape == (100, 16, 80)


def test_voices_differ_in_pitch() -> None:
    def pitch(voice: str) -> float:
        """Median autocorrelation pitch of the loud 40 ms frames."""
        audio = babble(4.0, np.random.default_rng(1), VOICES[voice]).astype(np.float64)
        frames = audio[: audio.shape[0] // 640 * 640].reshape(-1, 640)
        loud = frames[(frames**2).mean(-1) > np.percentile((frames**2).mean(-1), 60)]
        lags = np.arange(SAMPLE_RATE // 400, SAMPLE_RATE // 60)
        f0 = [SAMPLE_RATE / lags[np.argmax([f[:-lag] @ f[lag:] for lag in lags])] for f in loud]
        return float(np.median(f0))

    assert pitch("low") < pitch("mid") < pitch("high")


def test_audio_is_fitted_to_the_clip() -> None:
    short = np.ones(1000, np.float32)
    fitted = fit_duration(short, 20000)
    assert (
        fitted.shape == (20000,)
        and fitted[:1000].all()
        and not fitted[1000:5800].any()
        and fitted[5800:6800].all()
    )
    assert fit_duration(np.ones(30000, np.float32), 20000).shape == (20000,)


def test_audio_file_drives_the_clip(tmp_path: Path) -> None:
    audio = np.concatenate([np.zeros(8000), vowel(0.5, 730, 1090), np.zeros(8000)])
    wavfile.write(
        tmp_path / "speech.wav",
        22050,
        (
            np.interp(np.arange(0, audio.shape[0], SAMPLE_RATE / 22050), np.arange(audio.shape[0]), audio)
            * 30000
        ).astype(np.int16),
    )
    clip = SyntheticClip(num_frames=25, resolution=24, audio=str(tmp_path / "speech.wav"))
    folder = clip.ensure(tmp_path / "data")
    mouth = np.load(folder / "synthetic_truth.npz")["mouth_open"]
    assert mouth[:8].max() < 1e-3 and mouth[15:22].min() > 0.02
    name = clip.name
    wavfile.write(tmp_path / "speech.wav", 16000, (audio * 20000).astype(np.int16))
    assert clip.name != name  # the file's bytes are part of the clip's identity


def test_bad_audio_sources_are_named(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(AudioError, match="babble:nobody: unknown voice"):
        driving_audio("babble:nobody", 1.0, rng, "mid")
    with pytest.raises(AudioError, match="missing.wav: audio file does not exist"):
        driving_audio(str(tmp_path / "missing.wav"), 1.0, rng, "mid")
    with pytest.raises(AudioError, match="expected espeak:<voice>:<text>"):
        driving_audio("espeak:en", 1.0, rng, "mid")


@pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install espeak-ng)"
)
@pytest.mark.parametrize(
    "source", ["espeak:en-us:Hello there, how are you today?", "espeak:fr+f3:Bonjour, comment allez-vous?"]
)
def test_espeak_speech(source: str) -> None:
    audio = driving_audio(source, 2.0, np.random.default_rng(0), "mid")
    assert audio.shape == (2 * SAMPLE_RATE,)
    mouth = visemes(audio, 50)["mouth_open"]
    assert mouth.max() > 0.04 and (mouth < 0.005).sum() >= 2  # speaks, and pauses between repetitions


def test_real_speech_moves_the_mouth(shared_data: Path) -> None:
    for name in ("Obama_5s.wav", "japanese.wav", "MacronSpeech.wav"):
        audio = driving_audio(str(shared_data / "audio" / name), 4.0, np.random.default_rng(0), "mid")
        mouth = visemes(audio, 100)
        assert mouth["mouth_open"].std() > 0.01, name
        assert np.percentile(mouth["mouth_open"], 90) > 0.04, name
