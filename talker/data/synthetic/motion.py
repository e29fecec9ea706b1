"""Head pose drift, the torso's partial following, and irregular eye blinks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

from talker.data.synthetic.scene import Pose

FPS = 25
HEAD_PIVOT = np.array([0.0, 0.30, 0.05])  # head space: the head turns about the top of the neck
TORSO_PIVOT = np.array([0.0, 1.0, 0.10])  # torso space: about the chest


@dataclass(frozen=True)
class Framing:
    """Where the head sits in front of the camera at rest (camera space, head units)."""

    distance: float = 3.3  # head origin to camera
    height: float = -0.2  # head origin above the optical axis (y is down)


def _wander(n: int, rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Smooth zero-mean noise in about [-1, 1] whose changes take ``seconds``."""
    noise = ndimage.gaussian_filter1d(rng.standard_normal(n + 4 * FPS), seconds * FPS, mode="wrap")[
        2 * FPS : 2 * FPS + n
    ]
    return np.tanh(noise / (noise.std() + 1e-9) * 0.6)


def head_motion(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame head angles ``[n, 3]`` (pitch, yaw, roll in degrees) and drift ``[n, 3]`` (head units).

    Amplitudes follow a frontal speech video: a few degrees of nodding and turning, centimetres of sway.
    """
    angles = np.stack(
        [4.0 * _wander(n, rng, 0.5), 6.0 * _wander(n, rng, 0.7), 2.5 * _wander(n, rng, 0.9)], axis=-1
    )
    drift = np.stack(
        [0.03 * _wander(n, rng, 0.8), 0.02 * _wander(n, rng, 0.6), 0.05 * _wander(n, rng, 1.2)], axis=-1
    )
    return angles, drift


def _about(rotation: np.ndarray, pivot: np.ndarray, offset: np.ndarray) -> Pose:
    """Rotate about ``pivot`` (local) and then place the local origin at ``offset`` (camera)."""
    return Pose(rotation=rotation, translation=offset + pivot - rotation.dot(pivot))


def poses(angles: np.ndarray, drift: np.ndarray, framing: Framing) -> tuple[list[Pose], list[Pose]]:
    """Head and torso poses per frame. The torso follows a third of the head's turn and half its sway."""
    rest = np.array([0.0, framing.height, framing.distance])
    head_r = Rotation.from_euler("xyz", angles, degrees=True).as_matrix()
    torso_r = Rotation.from_euler("xyz", angles * np.array([0.12, 0.33, 0.4]), degrees=True).as_matrix()
    heads = [_about(head_r[i], HEAD_PIVOT, rest + drift[i]) for i in range(len(angles))]
    torsos = [_about(torso_r[i], TORSO_PIVOT, rest + 0.5 * drift[i]) for i in range(len(angles))]
    return heads, torsos


def blinks(n: int, rng: np.random.Generator) -> np.ndarray:
    """Eye openness per frame in [0, 1]: blinks of 0.15-0.3 s at irregular intervals (about 2-7 s),
    a fast close and a slower opening, some partial, now and then a double blink."""
    times = np.arange(n) / FPS
    openness = np.ones(n)
    start = rng.uniform(0.3, 2.0)
    while start < n / FPS:
        starts = [start]
        if rng.random() < 0.12:
            starts.append(start + rng.uniform(0.3, 0.45))
        for s in starts:
            duration = rng.uniform(0.15, 0.3)
            depth = 1.0 if rng.random() > 0.15 else rng.uniform(0.4, 0.75)
            tau = (times - s) / duration
            closing = np.clip(tau / 0.35, 0, 1)
            opening = np.clip((1 - tau) / 0.65, 0, 1)
            shape = np.where((tau >= 0) & (tau <= 1), np.minimum(closing, opening), 0.0)
            openness = np.minimum(openness, 1.0 - depth * np.sin(0.5 * np.pi * shape) ** 2)
        start = starts[-1] + 0.6 + rng.gamma(2.0, 1.5)
    return openness
