"""Head pose drift, the torso's partial following, and irregular blinks."""

import numpy as np
from scipy.spatial.transform import Rotation

from talker.data.synthetic.motion import FPS, Framing, blinks, head_motion, poses


def test_blinks_are_irregular() -> None:
    openness = blinks(60 * FPS, np.random.default_rng(3))
    closed = openness < 0.5
    starts = np.flatnonzero(closed[1:] & ~closed[:-1]) / FPS
    assert 8 <= starts.size <= 30  # a person blinks every 2-7 s
    gaps = np.diff(starts)
    assert gaps.std() > 0.5 and gaps.min() < 2.0 < gaps.max()
    assert openness.min() < 0.1 and np.mean(openness > 0.99) > 0.8  # full closures, open most of the time


def test_torso_follows_the_head_only_partly() -> None:
    angles, drift = head_motion(500, np.random.default_rng(0))
    assert 2.0 < np.abs(angles[:, 1]).max() < 6.5 and np.abs(angles).max() < 6.5
    heads, torsos = poses(angles, drift, Framing())
    head_yaw = np.array([Rotation.from_matrix(p.rotation).as_euler("xyz", degrees=True)[1] for p in heads])
    torso_yaw = np.array([Rotation.from_matrix(p.rotation).as_euler("xyz", degrees=True)[1] for p in torsos])
    ratio = np.polyfit(head_yaw, torso_yaw, 1)[0]
    assert 0.2 < ratio < 0.5
    head_x = np.array([p.translation[0] for p in heads])
    torso_x = np.array([p.translation[0] for p in torsos])
    assert 0.0 < torso_x.std() < head_x.std()
