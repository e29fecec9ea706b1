"""Per-video-frame audio features in the layout RAD-NeRF / ER-NeRF / R2-Talker read (``aud*.npy``).

Every extractor computes feature *rows* at 50 Hz (one per 20 ms, the rate of DeepSpeech, wav2vec2 and
HuBERT) and cuts them into one window of 16 rows per 25 fps video frame, exactly as RAD-NeRF's
``nerf/asr.py`` does (``unfold`` with kernel 16, stride 2, padding 8): frame ``i`` gets rows
``2i - 8 ... 2i + 7``, zero outside the clip, i.e. the 320 ms of audio centred on the frame's time
``i / 25`` s. The saved array is ``[N, 16, C]`` float32, N = number of video frames.

    >>> wav = np.zeros(16000, dtype=np.float32)           # 1 s of 16 kHz audio
    >>> LogMel()(wav, num_frames=25).shape
    (25, 16, 80)

Subclasses implement :meth:`AudioFeatures.rows` only; pretrained extractors (HuBERT, wav2vec2) go
behind the same interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from talker.audio.io import SAMPLE_RATE

VIDEO_FPS = 25
WINDOW = 16  # feature rows per video frame (RAD-NeRF's hard-coded 16)


def video_windows(
    rows: np.ndarray, num_frames: int, rows_per_frame: int = 2, window: int = WINDOW
) -> np.ndarray:
    """``[M, C]`` feature rows -> ``[num_frames, window, C]``; frame ``i`` is centred on row ``rows_per_frame * i``.

    Window ``i`` holds rows ``c - window // 2 ... c + window // 2 - 1`` with ``c = rows_per_frame * i``;
    rows outside ``[0, M)`` are zeros (RAD-NeRF's unfold padding).
    """
    return windows_of(rows, np.arange(num_frames), rows_per_frame, window)


def windows_of(
    rows: np.ndarray, frames: np.ndarray, rows_per_frame: int = 2, window: int = WINDOW, first: int | None = None
) -> np.ndarray:
    """``[M, C]`` feature rows -> ``[len(frames), window, C]``: the windows of :func:`video_windows` of
    the video frames ``frames`` only. ``first``: the first row of frame ``i``'s window relative to
    ``rows_per_frame * i`` (default ``-window // 2``: the window centred on it)."""
    if rows.ndim != 2:
        raise ValueError(f"feature rows must be [M, C], got shape {rows.shape}")
    first = -(window // 2) if first is None else first
    index = rows_per_frame * np.asarray(frames)[:, None] + np.arange(first, first + window)[None, :]  # [N, window]
    valid = (index >= 0) & (index < rows.shape[0])
    out = np.zeros((index.shape[0], window, rows.shape[1]), dtype=np.float32)
    out[valid] = rows[index[valid]]
    return out


class FrameWindows:
    """A ``[num_frames, window, C]`` track of per-frame feature windows that holds only the rows and
    cuts the windows it is indexed by (:func:`windows_of`): each row is in ``window / rows_per_frame``
    windows (8 for 16-row windows at 2 rows per frame), so a long audio file's windows take that many
    times less memory than :func:`video_windows`' array. Indexing with an int or a tensor of frame
    indices returns a float32 tensor, as the dense track would (``talker.data.frames.TrackWindow``).

        >>> track = FrameWindows(np.ones((50, 3), np.float32), num_frames=25)
        >>> tuple(track.shape), tuple(track[torch.tensor([0, 24])].shape)
        ((25, 16, 3), (2, 16, 3))
    """

    def __init__(self, rows: np.ndarray, num_frames: int, rows_per_frame: int = 2, window: int = WINDOW) -> None:
        if rows.ndim != 2:
            raise ValueError(f"feature rows must be [M, C], got shape {rows.shape}")
        self.rows = np.ascontiguousarray(rows, dtype=np.float32)
        self.rows_per_frame, self.window = rows_per_frame, window
        self.shape = torch.Size((num_frames, window, rows.shape[1]))

    def __len__(self) -> int:
        return self.shape[0]

    def dim(self) -> int:
        return len(self.shape)

    def __getitem__(self, frames: int | Tensor) -> Tensor:
        index = torch.as_tensor(frames)
        if ((index < 0) | (index >= len(self))).any():
            raise IndexError(f"frame index out of range for {len(self)} video frames")
        cut = windows_of(self.rows, index.reshape(-1).numpy(), self.rows_per_frame, self.window)
        return torch.from_numpy(cut).reshape(*index.shape, *self.shape[1:])

    def own_rows(self) -> Tensor:
        """``[num_frames, rows_per_frame, C]``: the rows inside each frame (its window's middle rows,
        zeros past the last row), read off the rows without cutting any window."""
        frames = np.arange(len(self))
        return torch.from_numpy(windows_of(self.rows, frames, self.rows_per_frame, self.rows_per_frame, first=0))


class AudioFeatures(ABC):
    """Speech -> per-video-frame feature windows ``[N, window, dim]``.

    Attributes:
        file_name: where a dataset keeps these features (``aud_<name>.npy``); the reference codebases'
            own names (aud_ds.npy: DeepSpeech, aud_eo.npy / aud.npy: wav2vec2, aud_hu.npy: HuBERT)
            keep their meaning.
        rows_per_second: rate of :meth:`rows` (50 Hz; two rows per 25 fps video frame).
    """

    file_name: ClassVar[str]
    rows_per_second: ClassVar[int] = 50
    sample_rate: ClassVar[int] = SAMPLE_RATE

    def __init__(self, window: int = WINDOW) -> None:
        self.window = window

    @property
    @abstractmethod
    def dim(self) -> int:
        """Width ``C`` of one feature row."""

    @abstractmethod
    def rows(self, audio: np.ndarray) -> np.ndarray:
        """``[T]`` float audio at ``sample_rate`` -> ``[M, dim]`` float32; row ``j`` is centred at ``j / rows_per_second`` s."""

    def num_video_frames(self, num_samples: int, fps: int = VIDEO_FPS) -> int:
        """Video frames covered by ``num_samples`` of audio (frame ``i`` starts at ``i / fps``)."""
        return int(np.ceil(num_samples * fps / self.sample_rate))

    def __call__(self, audio: np.ndarray, num_frames: int | None = None, fps: int = VIDEO_FPS) -> np.ndarray:
        """``[T]`` audio -> ``[num_frames, window, dim]`` (``num_frames`` defaults to the audio's length at ``fps``)."""
        track = self.frame_windows(audio, num_frames, fps)
        return video_windows(track.rows, len(track), track.rows_per_frame, track.window)

    def frame_windows(self, audio: np.ndarray, num_frames: int | None = None, fps: int = VIDEO_FPS) -> FrameWindows:
        """``[T]`` audio -> the windows of :meth:`__call__` as a :class:`FrameWindows` track (rows held,
        windows cut when read): what driving with a long audio file keeps."""
        if self.rows_per_second % fps:
            raise ValueError(
                f"{type(self).__name__}: {self.rows_per_second} rows/s is not a multiple of {fps} fps"
            )
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 1:
            raise ValueError(f"audio must be mono [T], got shape {audio.shape}")
        if num_frames is None:
            num_frames = self.num_video_frames(audio.shape[0], fps)
        return FrameWindows(self.rows(audio), num_frames, self.rows_per_second // fps, self.window)


def hz_to_mel(freq: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale (linear below 1 kHz, logarithmic above), as librosa's default."""
    freq = np.asarray(freq, dtype=np.float64)
    mel = 3.0 * freq / 200.0
    log_region = freq >= 1000.0
    return np.where(log_region, 15.0 + 27.0 * np.log(np.maximum(freq, 1e-9) / 1000.0) / np.log(6.4), mel)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp(np.log(6.4) / 27.0 * (mel - 15.0)), 200.0 * mel / 3.0)


def mel_filterbank(
    num_fft_bins: int, num_mels: int, fmin: float, fmax: float, sample_rate: int
) -> np.ndarray:
    """``[num_fft_bins, num_mels]`` triangular filters on the Slaney mel scale, each of unit area (Slaney norm)."""
    fft_freqs = np.linspace(0.0, sample_rate / 2, num_fft_bins)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), num_mels + 2))
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (fft_freqs[:, None] - lower) / (centre - lower)
    falling = (upper - fft_freqs[:, None]) / (upper - centre)
    filters = np.maximum(0.0, np.minimum(rising, falling))
    return filters * (2.0 / (upper - lower))


class LogMel(AudioFeatures):
    """Weight-free log-mel spectrogram rows: 25 ms Hann window, 20 ms hop, ``log10`` of mel power.

    Row ``j`` is the windowed frame centred on sample ``320 j`` (zero-padded at the ends), so it
    lines up with the 50 Hz rows of wav2vec2 / HuBERT and with RAD-NeRF's per-frame windows.
    """

    file_name = "aud_mel.npy"

    def __init__(
        self,
        num_mels: int = 80,
        fmin: float = 0.0,
        fmax: float = 8000.0,
        fft_size: int = 512,
        frame_length: int = 400,
        floor: float = 1e-10,
        window: int = WINDOW,
    ) -> None:
        super().__init__(window)
        self.hop = self.sample_rate // self.rows_per_second
        if frame_length > fft_size:
            raise ValueError(f"frame_length {frame_length} exceeds fft_size {fft_size}")
        self.num_mels, self.fft_size, self.frame_length, self.floor = num_mels, fft_size, frame_length, floor
        self.filters = mel_filterbank(fft_size // 2 + 1, num_mels, fmin, fmax, self.sample_rate)
        self.centre_frequencies = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), num_mels + 2))[1:-1]
        self.taper = np.hanning(frame_length + 1)[:-1]  # periodic Hann

    @property
    def dim(self) -> int:
        return self.num_mels

    def power_spectrum(self, audio: np.ndarray) -> np.ndarray:
        """``[M, fft_size // 2 + 1]`` power of the windowed frames (row ``j`` centred on sample ``hop * j``)."""
        audio = np.asarray(audio, dtype=np.float64)
        half = self.frame_length // 2
        padded = np.pad(audio, (half, half))
        count = 1 + audio.shape[0] // self.hop
        starts = self.hop * np.arange(count)
        frames = padded[starts[:, None] + np.arange(self.frame_length)[None, :]] * self.taper
        return np.abs(np.fft.rfft(frames, n=self.fft_size, axis=-1)) ** 2

    def rows(self, audio: np.ndarray) -> np.ndarray:
        mel = self.power_spectrum(audio) @ self.filters
        return np.log10(np.maximum(mel, self.floor)).astype(np.float32)
