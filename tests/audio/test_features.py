from pathlib import Path

import numpy as np
import pytest
import torch

from talker.audio import SAMPLE_RATE, AudioError, FrameWindows, LogMel, load_audio, video_windows, write_wav
from talker.data.frames import AUDIO_WINDOW, TrackWindow


def burst_at(seconds: float, duration: float = 2.0) -> np.ndarray:
    """Silence with a 10 ms 1 kHz tone burst centred at ``seconds``."""
    t = np.arange(int(duration * SAMPLE_RATE)) / SAMPLE_RATE
    return (np.sin(2 * np.pi * 1000 * t) * (np.abs(t - seconds) < 0.005)).astype(np.float32)


def test_one_window_per_video_frame() -> None:
    windows = LogMel()(np.zeros(SAMPLE_RATE, dtype=np.float32))  # 1 s
    assert windows.shape == (25, 16, 80) and windows.dtype == np.float32
    assert LogMel()(np.zeros(SAMPLE_RATE + 1, dtype=np.float32)).shape[0] == 26  # a started frame counts
    assert LogMel()(np.zeros(100, dtype=np.float32), num_frames=7).shape == (7, 16, 80)


@pytest.mark.parametrize("frame", [0, 3, 24])
def test_window_is_centred_on_its_frame(frame: int) -> None:
    windows = LogMel()(burst_at(frame / 25), num_frames=50)
    energy = windows.max(axis=-1)  # [N, 16]
    assert energy[frame].argmax() == 8  # row 2i of window i sits at index 8
    assert energy[frame + 1].argmax() == 6  # the next frame sees it 40 ms (two rows) earlier
    if frame > 0:
        assert energy[frame - 1].argmax() == 10
    assert energy[frame + 4].argmax() == 0  # 160 ms later it is the window's first row ...
    assert energy[frame + 5].max() < energy[frame].max() - 5  # ... 200 ms later it has left the window


def test_windows_match_rad_nerf_unfold() -> None:
    rows = np.random.default_rng(0).standard_normal((37, 5)).astype(np.float32)
    feats = torch.from_numpy(rows).T.reshape(1, 5, -1, 1)
    unfold = torch.nn.functional.unfold(feats, kernel_size=(16, 1), padding=(8, 0), stride=(2, 1))
    reference = unfold.view(5, 16, -1).permute(2, 1, 0).numpy()  # [M // 2 + 1, 16, C]
    ours = video_windows(rows, reference.shape[0])
    np.testing.assert_array_equal(ours, reference)


def test_frame_windows_cut_when_read_are_the_dense_windows() -> None:
    """Driving's lazy audio track gives every frame's provider window (zero-padded at both ends) exactly
    as the dense ``[N, 16, C]`` array does, and holds only the rows."""
    rows = np.random.default_rng(2).standard_normal((61, 5)).astype(np.float32)
    dense = torch.from_numpy(video_windows(rows, 31))
    lazy = FrameWindows(rows, 31)
    assert lazy.shape == dense.shape and lazy.dim() == 3 and lazy.rows.nbytes * 8 < dense.numel() * 4
    provider = TrackWindow(AUDIO_WINDOW, pad="zeros")
    for time in (0, 1, 15, 29, 30):
        assert torch.equal(provider(lazy, time), provider(dense, time)), time
    assert torch.equal(lazy[7], dense[7])
    with pytest.raises(IndexError, match="31 video frames"):
        lazy[torch.tensor([31])]
    np.testing.assert_array_equal(LogMel().frame_windows(rows[:, 0].repeat(400), num_frames=9)[torch.arange(9)].numpy(),
                                  LogMel()(rows[:, 0].repeat(400), num_frames=9))


def test_log_mel_matches_transformers() -> None:
    audio_utils = pytest.importorskip("transformers.audio_utils")
    audio = np.random.default_rng(1).standard_normal(SAMPLE_RATE // 2).astype(np.float32) * 0.1
    ours = LogMel().rows(audio)
    filters = audio_utils.mel_filter_bank(
        257, 80, 0.0, 8000.0, SAMPLE_RATE, norm="slaney", mel_scale="slaney"
    )
    reference = audio_utils.spectrogram(
        audio,
        audio_utils.window_function(400, "hann"),
        frame_length=400,
        hop_length=320,
        fft_length=512,
        power=2.0,
        center=True,
        pad_mode="constant",
        mel_filters=filters,
        log_mel="log10",
        mel_floor=1e-10,
    ).T
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference, atol=1e-4)


def test_load_audio_resamples_and_mixes_down(tmp_path: Path) -> None:
    rate = 22050
    t = np.arange(int(1.5 * rate)) / rate
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 440 * t)], axis=-1) * 0.5
    from scipy.io import wavfile

    wavfile.write(tmp_path / "tone.wav", rate, (stereo * 32767).astype(np.int16))
    audio = load_audio(tmp_path / "tone.wav")
    assert audio.dtype == np.float32 and abs(audio.shape[0] - 1.5 * SAMPLE_RATE) <= 2
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.fft.rfftfreq(audio.shape[0], 1 / SAMPLE_RATE)[spectrum.argmax()] - 440) < 2
    write_wav(tmp_path / "again.wav", audio)
    np.testing.assert_allclose(load_audio(tmp_path / "again.wav"), audio, atol=2 / 32768)


def test_load_audio_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="nope.wav: audio file does not exist"):
        load_audio(tmp_path / "nope.wav")
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    with pytest.raises(AudioError, match="junk.wav: ffmpeg cannot decode it"):
        load_audio(tmp_path / "junk.wav")


def test_real_speech_features(shared_data: Path) -> None:
    audio = load_audio(shared_data / "audio" / "Obama_5s.wav")
    windows = LogMel()(audio)
    assert windows.shape[1:] == (16, 80) and abs(windows.shape[0] - 125) <= 1
    assert np.isfinite(windows).all()
    loudness = windows[:, 8].max(axis=-1)
    assert loudness.max() - loudness.min() > 2  # speech and pauses differ by over 20 dB somewhere


def test_command_line_extraction(tmp_path: Path) -> None:
    import subprocess
    import sys

    write_wav(tmp_path / "speech.wav", burst_at(12 / 25, duration=1.0))
    proc = subprocess.run(
        [sys.executable, "-m", "talker.audio", str(tmp_path / "speech.wav"), str(tmp_path / "aud_mel.npy")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    windows = np.load(tmp_path / "aud_mel.npy")
    assert windows.shape == (25, 16, 80) and windows[12].max(-1).argmax() == 8
    proc = subprocess.run(
        [sys.executable, "-m", "talker.audio", str(tmp_path / "none.wav"), str(tmp_path / "x.npy")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and "none.wav: audio file does not exist" in proc.stderr


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_mel_frame_count_equals_the_videos(tmp_path: Path, rate: int) -> None:
    """A clip of N video frames (N / 25 s of audio, at any sample rate) gives exactly N windows;
    a clip that ends inside a frame counts that frame, as a video of it would."""
    from scipy.io import wavfile

    for frames, extra in [(1, 0.0), (13, 0.0), (50, 0.0), (77, 0.0), (77, 0.013), (200, 0.0399)]:
        seconds = frames / 25 + extra
        t = np.arange(int(round(seconds * rate))) / rate
        stereo = np.stack([np.sin(2 * np.pi * 300 * t), np.cos(2 * np.pi * 500 * t)], axis=-1) * 0.3
        wavfile.write(tmp_path / "clip.wav", rate, (stereo * 32767).astype(np.int16))
        windows = LogMel()(load_audio(tmp_path / "clip.wav"))
        assert windows.shape == (frames + (extra > 0), 16, 80), (rate, frames, extra)
