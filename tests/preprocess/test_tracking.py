"""Face tracking maths on exact, synthetic inputs (no media needed)."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from talker.preprocess.tracking import (
    fill_missing,
    intrinsics_matrix,
    project,
    similarity,
    smooth_poses,
    solve_poses,
    unproject_expressions,
)


def _face(rng: np.random.Generator, count: int = 40) -> np.ndarray:
    """A face-sized, non-planar point cloud in canonical units (the face towards -z)."""
    points = rng.uniform([-0.3, -0.2, -0.4], [0.3, 0.4, -0.15], size=(count, 3))
    return points


def test_similarity_recovers_a_known_transform() -> None:
    rng = np.random.default_rng(0)
    src = _face(rng)
    rotation = Rotation.from_euler("xyz", [10, -25, 5], degrees=True).as_matrix()
    dst = 2.5 * src @ rotation.T + np.array([1.0, -2.0, 3.0])
    s, r, t = similarity(src, dst)
    assert abs(s - 2.5) < 1e-9
    assert np.allclose(r, rotation, atol=1e-9) and np.allclose(t, [1.0, -2.0, 3.0], atol=1e-9)


def test_pose_round_trip_projects_onto_the_detections() -> None:
    """PnP on exact perspective projections recovers the poses; reprojection is below 1e-3 px."""
    rng = np.random.default_rng(1)
    canonical = _face(rng)
    k = intrinsics_matrix(700.0, 256, 256)
    angles = np.stack([np.linspace(-8, 8, 10), np.linspace(12, -12, 10), np.linspace(-3, 3, 10)], -1)
    rotations = Rotation.from_euler("xyz", angles, degrees=True).as_matrix()
    translations = np.stack([np.linspace(-0.1, 0.1, 10), np.full(10, -0.2), np.linspace(3.2, 3.6, 10)], -1)
    pixels = project(canonical, rotations, translations, k)
    r, t = solve_poses(canonical, pixels, k)
    assert np.abs(r - rotations).max() < 1e-5 and np.abs(t - translations).max() < 1e-4
    assert np.linalg.norm(project(canonical, r, t, k) - pixels, axis=-1).max() < 1e-3


def test_unprojected_expressions_reproject_exactly_and_keep_the_depth() -> None:
    rng = np.random.default_rng(2)
    k = intrinsics_matrix(500.0, 128, 160)
    rotations = Rotation.from_euler("xyz", rng.uniform(-10, 10, (4, 3)), degrees=True).as_matrix()
    translations = np.array([[0.0, -0.2, 3.3]] * 4)
    aligned = np.stack([_face(rng, 10) for _ in range(4)])
    detected = project(aligned, rotations, translations, k) + rng.normal(0, 1.0, (4, 10, 2))
    expressions = unproject_expressions(aligned, detected, rotations, translations, k)
    assert np.linalg.norm(project(expressions, rotations, translations, k) - detected, axis=-1).max() < 1e-9
    depth = lambda p: (np.einsum("nij,nkj->nki", rotations, p) + translations[:, None])[..., 2]  # noqa: E731
    assert np.allclose(depth(expressions), depth(aligned))


def test_smoothing_reduces_pose_jitter_and_keeps_a_constant_pose() -> None:
    rng = np.random.default_rng(3)
    n = 50
    base = Rotation.from_euler("y", 20, degrees=True).as_matrix()
    noisy = Rotation.from_rotvec(rng.normal(0, 0.01, (n, 3))).as_matrix() @ base
    t = np.array([0.0, 0.0, 3.0]) + rng.normal(0, 0.01, (n, 3))
    r2, t2 = smooth_poses(noisy, t, 2.0)
    angle = lambda r: Rotation.from_matrix(r @ base.T).magnitude()  # noqa: E731
    assert angle(r2).mean() < 0.6 * angle(noisy).mean()
    assert np.abs(t2 - [0, 0, 3]).mean() < 0.6 * np.abs(t - [0, 0, 3]).mean()
    r3, t3 = smooth_poses(np.repeat(base[None], n, 0), np.zeros((n, 3)), 2.0)
    assert np.allclose(r3, base) and np.allclose(t3, 0)


def test_missing_frames_are_interpolated_inside_and_copied_at_the_ends() -> None:
    values = np.arange(6, dtype=float)[:, None] * np.array([[1.0, 10.0]])
    found = np.array([False, True, False, False, True, False])
    filled, report = fill_missing(values * found[:, None], found)
    assert np.allclose(filled[2], values[1] + (values[4] - values[1]) / 3)
    assert np.allclose(filled[0], values[1]) and np.allclose(filled[5], values[4])
    assert [r["frame"] for r in report] == [0, 2, 3, 5]
    assert "interpolated between frames 1 and 4" in report[1]["handling"]
