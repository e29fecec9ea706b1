"""The 68 landmarks land on the rendered features they name; the frame is the composite of its layers."""

from __future__ import annotations

import numpy as np
import pytest

from talker.data.synthetic.background import background_image
from talker.data.synthetic.face import EYE, IRIS, LIPS, MOUTH, TEETH, FaceModel, FaceState
from talker.data.synthetic.generator import SyntheticClip
from talker.data.synthetic.identity import IDENTITIES
from talker.data.synthetic.motion import Framing, poses
from talker.data.synthetic.scene import cast_head, render_frame

RESOLUTION = 160
CASES = [  # (identity, expression, (pitch, yaw, roll) degrees)
    ("ada", FaceState(mouth_open=0.05, mouth_width=1.0, mouth_round=0.0, eye_open=1.0), (3.0, -6.0, 2.0)),
    ("bo", FaceState(mouth_open=0.03, mouth_width=1.15, mouth_round=0.0, eye_open=0.8), (-3.0, 5.0, -2.0)),
    ("cy", FaceState(mouth_open=0.04, mouth_width=0.9, mouth_round=0.8, eye_open=1.0), (0.0, 2.0, 0.0)),
    ("dee", FaceState(mouth_open=0.0, mouth_width=1.0, mouth_round=0.0, eye_open=1.0), (2.0, -3.0, 1.0)),
]


def scene(name: str, state: FaceState, angles: tuple[float, float, float]):
    clip = SyntheticClip(resolution=RESOLUTION, identity=name)
    camera = clip.camera()
    face = FaceModel(IDENTITIES[name], texel=0.25 / (camera.focal / clip.distance))
    heads, torsos = poses(
        np.array([angles]), np.array([[0.01, -0.01, 0.02]]), Framing(distance=clip.distance)
    )
    background = background_image(IDENTITIES[name], RESOLUTION, RESOLUTION, np.random.default_rng(0))
    textures = face.textures(state)
    layers = render_frame(
        textures, heads[0], torsos[0], camera, background, camera.ray_directions(2), with_material=True
    )
    landmarks = face.landmarks_3d(state)
    pixels = camera.project(heads[0].apply(landmarks))  # continuous coordinates, pixel i covers [i, i + 1)
    return camera, textures, heads[0], layers, landmarks, pixels


@pytest.fixture(scope="module", params=range(len(CASES)), ids=[c[0] for c in CASES])
def case(request):
    return CASES[request.param], scene(*CASES[request.param])


def extremes(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres ``(x, y)`` of the leftmost and rightmost pixels of a mask (averaged over ties)."""
    ys, xs = np.nonzero(mask)
    left, right = xs == xs.min(), xs == xs.max()
    return np.array([xs.min() + 0.5, ys[left].mean() + 0.5]), np.array(
        [xs.max() + 0.5, ys[right].mean() + 0.5]
    )


def test_mouth_corners_on_the_rendered_mouth_corners(case) -> None:
    _, (_, _, _, layers, _, pixels) = case
    mouth = np.isin(layers.material, (LIPS, TEETH, MOUTH))
    left, right = extremes(mouth)
    assert np.abs(left - pixels[48]).max() <= 1.5, (left, pixels[48])
    assert np.abs(right - pixels[54]).max() <= 1.5, (right, pixels[54])


def test_eye_corners_on_the_rendered_eye_corners(case) -> None:
    _, (_, _, _, layers, _, pixels) = case
    eyes = np.isin(layers.material, (EYE, IRIS))
    middle = int(round(pixels[27, 0]))
    for side, (outer, inner) in ((slice(0, middle), (36, 39)), (slice(middle, None), (42, 45))):
        mask = np.zeros_like(eyes)
        mask[:, side] = eyes[:, side]
        left, right = extremes(mask)
        assert np.abs(left - pixels[outer]).max() <= 1.5, (left, pixels[outer])
        assert np.abs(right - pixels[inner]).max() <= 1.5, (right, pixels[inner])


def test_inner_lips_bound_the_mouth_opening(case) -> None:
    (_, state, _), (_, _, _, layers, _, pixels) = case
    opening = np.isin(layers.material, (TEETH, MOUTH))
    column = opening[:, int(pixels[62, 0])]
    if state.mouth_open < 0.01:
        assert opening.sum() == 0  # a closed mouth shows no teeth or cavity
        return
    rows = np.flatnonzero(column)
    assert abs(rows.min() + 0.5 - pixels[62, 1]) <= 1.5 and abs(rows.max() + 0.5 - pixels[66, 1]) <= 1.5


def test_landmarks_are_visible_where_they_project(case) -> None:
    """A ray through a landmark's pixel position hits the head surface at that landmark."""
    (_, state, _), (camera, textures, head, _, landmarks, pixels) = case
    fx, fy, cx, cy = camera.intrinsics
    dirs = np.stack([(pixels[:, 0] - cx) / fx, (pixels[:, 1] - cy) / fy, np.ones(68)], axis=-1)
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    origin, dirs_h = head.rays_to_local(dirs.astype(np.float32))
    hits = cast_head(textures, origin, dirs_h)
    assert hits.hit[17:].all()
    error = np.linalg.norm(hits.points - landmarks, axis=-1)
    # Brows, nose, eyes, outer lips (inner lips of an open mouth border the cavity: checked above).
    checked = list(range(17, 60)) + ([] if state.mouth_open > 0 else list(range(60, 68)))
    pixel = 1.0 / (camera.focal / SyntheticClip().distance)
    assert error[checked].max() < 0.6 * pixel, {
        i: round(float(error[i] / pixel), 2) for i in checked if error[i] > 0.6 * pixel
    }


def test_nose_tip_is_the_most_protruding_point(case) -> None:
    _, (_, textures, _, _, landmarks, _) = case
    depth = textures.depth
    v, u = np.unravel_index(np.argmin(depth), depth.shape)
    tip = np.array([textures.model.u[u], textures.model.v[v]])
    assert np.linalg.norm(tip - landmarks[30, :2]) < 0.012


def test_frame_is_the_composite_of_its_layers(case) -> None:
    (name, _, _), (_, _, _, layers, _, _) = case
    background = background_image(IDENTITIES[name], RESOLUTION, RESOLUTION, np.random.default_rng(0))
    head, body = layers.head_rgba, layers.body_rgba
    behind = body[..., 3:] * body[..., :3] + (1 - body[..., 3:]) * background
    np.testing.assert_allclose(
        layers.image, head[..., 3:] * head[..., :3] + (1 - head[..., 3:]) * behind, atol=1e-5
    )
