"""A frame's conditions: the one place that builds the per-frame inputs a strategy (and a field) reads.

Training batches and evaluation frames (``talker.data.datamodule``), the occupancy sweep, the speed
profile, the projector and driving with new audio (``talker.inference``) all build a frame's
``cond`` here, from *tracks*: per-time sequences of a driving signal, those of a dataset split
(:func:`split_tracks`) or those made from new audio. One provider per input key
(``ConditioningStrategy.inputs``, ``Field.frame_keys``) cuts the key's window around the frame's
time index:

======== ============================= ===================================================
key      track                         window
======== ============================= ===================================================
landmarks ``[T, 68, 3]`` canonical 3D   ``data.landmark_window`` frames (R2-Talker: 5), clamped at
                                        the clip's ends (the nearest frame repeats)
audio    ``[T, 16, C]`` feature windows ``data.audio_window`` frames (RAD-NeRF's attention: 8),
                                        zero-padded at the clip's ends (RAD-NeRF's and ER-NeRF's
                                        providers: no audio there)
pose     ``[T, 4, 4]`` head pose        the frame's own pose, ``[1, 4, 4]`` (LokiTalk's torso
         (camera-to-world)              deformation reads it; driving plays the split's poses)
reference ``[K, 3, r, r]`` face crops   not a window: one crop of the identity, ``[3, r, r]``: its
         of the identity's training     first training frame, or a random one at each call
         frames (not time-indexed)      (``data.reference``; LokiTalk's ID encoder reads it)
======== ============================= ===================================================

Driving new audio, the audio track is a :class:`talker.audio.FrameWindows`: its 50 Hz rows, each
window cut when the provider reads it (8x less memory than the dense windows of a long file).

Example:
    >>> track = torch.arange(10.0)
    >>> TrackWindow(4)(track, 0).tolist(), TrackWindow(4)(track, 5).tolist()  # clamped at the ends
    ([0.0, 0.0, 0.0, 1.0], [3.0, 4.0, 5.0, 6.0])
    >>> TrackWindow(4, pad="zeros")(track, 9).tolist()                         # or zero-padded
    [7.0, 8.0, 9.0, 0.0]
    >>> FrameConditions(landmark_window=3)({"landmarks": track}, 9, zero=False)["landmarks"].tolist()
    [8.0, 9.0, 9.0]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor
from torch.nn import functional as F

from talker.audio import FrameWindows
from talker.data.landmarks import face_box

if TYPE_CHECKING:
    from talker.data.layout import Split

Track = Tensor | FrameWindows  # a time-indexed sequence: a tensor, or new audio's windows cut when read

# Frames of audio feature windows per condition: RAD-NeRF's (and ER-NeRF's) attention smoothing window.
AUDIO_WINDOW = 8
# Frames of landmarks per condition: R2-Talker's public code.
LANDMARK_WINDOW = 5
# Side in pixels of the face crop an identity's reference frame is given as (ID-aware transfer).
REFERENCE_SIZE = 64
ReferenceMode = Literal["first", "random"]


class TrackWindow:
    """``size`` rows of a track centred on time ``t`` (rows ``t - size // 2`` onwards):
    ``[T, ...] -> [size, ...]``. Rows before the clip's start or after its end repeat the nearest
    frame (``pad="clamp"``) or are zeros (``pad="zeros"``)."""

    def __init__(self, size: int, pad: Literal["clamp", "zeros"] = "clamp") -> None:
        if size < 1:
            raise ValueError(f"a condition window needs at least one frame, got {size}")
        if pad not in ("clamp", "zeros"):
            raise ValueError(f"TrackWindow pad must be 'clamp' or 'zeros', got {pad!r}")
        self.size, self.pad = size, pad

    def __call__(self, track: Track, time: int) -> Tensor:
        ids = torch.arange(self.size) - self.size // 2 + time
        inside = (ids >= 0) & (ids < track.shape[0])
        window = track[ids.clamp(0, track.shape[0] - 1)]
        if self.pad == "zeros":
            window = window * inside.view(-1, *([1] * (track.dim() - 1))).to(window.dtype)
        return window


class ReferenceFrame:
    """One of an identity's reference crops ``[K, 3, r, r] -> [3, r, r]``, whatever the time: the first
    (``first``: evaluation, driving, the start of a fine-tuning) or one drawn at each call (``random``:
    LokiTalk's pre-training, "a random frame of the same video" per step; torch's global generator,
    which Lightning seeds)."""

    def __init__(self, mode: ReferenceMode = "first") -> None:
        if mode not in ("first", "random"):
            raise ValueError(f"data.reference must be 'first' or 'random', got {mode!r}")
        self.mode = mode

    def __call__(self, track: Tensor, time: int) -> Tensor:
        return track[int(torch.randint(track.shape[0], ()))] if self.mode == "random" else track[0]


class FrameConditions:
    """Builds ``frame["cond"]``: for each input key, its provider's window of the key's track.

    Args:
        landmark_window: frames per landmark window.
        audio_window: frames per audio-feature window.
        zero: replace every input by zeros of the same shape: the control arm that tells a model
            nothing about the frame it renders (what is left is the mean face;
            ``data.zero_condition``).
        reference: how the ``reference`` input picks among ``references`` (:class:`ReferenceFrame`).

    Attributes:
        references: ``[K, 3, r, r]`` face crops of the identity's training frames (:func:`face_crops`),
            the track of the ``reference`` input of every frame, or None (no such input).
    """

    def __init__(
        self, landmark_window: int = LANDMARK_WINDOW, audio_window: int = AUDIO_WINDOW, zero: bool = False,
        reference: ReferenceMode = "first",
    ) -> None:
        self.providers = {
            "landmarks": TrackWindow(landmark_window),
            "audio": TrackWindow(audio_window, pad="zeros"),
            "pose": TrackWindow(1),  # a pose is a state, not a motion: no window
            "reference": ReferenceFrame(reference),
        }
        self.zero = zero
        self.references: Tensor | None = None

    def use_references(self, split: Split) -> None:
        """Give every frame the ``reference`` input, chosen among ``split``'s face crops (a person's
        training frames, also for their held-out frames and for driving)."""
        self.references = face_crops(split)

    def own_tracks(self) -> dict[str, Tensor]:
        """Tracks the builder holds itself, whichever tracks drive the frame: the person's reference crops."""
        return {"reference": self.references} if self.references is not None else {}

    @property
    def landmark_window(self) -> int:
        return self.providers["landmarks"].size

    def __call__(
        self, tracks: Mapping[str, Track], time: int, keys: Iterable[str] | None = None, zero: bool | None = None
    ) -> dict[str, Tensor]:
        """The condition at ``time`` of ``tracks``: every key of ``keys`` (default: every key with a
        track and a provider). ``zero`` overrides the builder's setting (driving is never zeroed)."""
        tracks = {**tracks, **self.own_tracks()}
        wanted = [k for k in self.providers if k in tracks] if keys is None else list(dict.fromkeys(keys))
        cond = {}
        for key in wanted:
            if key not in self.providers:
                raise KeyError(f"no condition provider for input {key!r} (talker.data.frames knows {sorted(self.providers)})")
            if key not in tracks:
                raise KeyError(f"input {key!r} is needed but there is no {key} track (have {sorted(tracks)})")
            cond[key] = self.providers[key](tracks[key], time)
        zero = self.zero if zero is None else zero
        return {key: torch.zeros_like(value) for key, value in cond.items()} if zero else cond

    def of_split(self, split: Split, index: int, keys: Iterable[str] | None = None) -> dict[str, Tensor]:
        """The condition of frame ``index`` of a dataset split."""
        return self(split_tracks(split), int(split.aud_ids[index]), keys)


def split_tracks(split: Split) -> dict[str, Tensor]:
    """The driving tracks of a dataset split, indexed by its frames' ``aud_ids``."""
    return {
        "landmarks": split.landmarks,
        **({"audio": split.audio} if split.audio is not None else {}),
        "pose": pose_track(split),
    }


def face_crops(split: Split, size: int = REFERENCE_SIZE) -> Tensor:
    """``[N, 3, size, size]`` in [0, 1]: each training frame's face box (``face_box`` of its landmarks)
    resized, in frame order: an identity's reference frames."""
    crops = []
    for image, lms in zip(split.images, split.lms):
        y0, y1, x0, x1 = face_box(lms, split.height, split.width)
        crop = image[y0:y1, x0:x1].permute(2, 0, 1).unsqueeze(0).float() / 255.0
        crops.append(F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False))
    return torch.cat(crops)


def pose_track(split: Split) -> Tensor:
    """``[T, 4, 4]``: the split's camera-to-world poses at their frames' ``aud_ids`` (the time index
    every other track uses); times without a frame of this split hold the identity."""
    length = max(split.landmarks.shape[0], int(split.aud_ids.max()) + 1)
    track = torch.eye(4, dtype=split.poses.dtype).repeat(length, 1, 1)
    track[torch.as_tensor(split.aud_ids, dtype=torch.long)] = split.poses
    return track
