"""Procedural head: an ellipsoid with painted features, and its 68 landmarks in head space.

Head space is the ngp frame of talker's NeRF (x right, y down, z away from the camera); the face
looks towards -z. Features are described in *face coordinates* ``(u, v) = (x, y)`` of points on
the front of the ellipsoid, so a landmark is the surface point above its ``(u, v)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talker.data.landmarks import EYE_LEFT, EYE_RIGHT, JAW, MOUTH


@dataclass(frozen=True)
class Identity:
    """Appearance of one synthetic person."""

    name: str = "ada"
    radii: tuple[float, float, float] = (0.34, 0.44, 0.38)
    skin: tuple[float, float, float] = (0.87, 0.68, 0.56)
    hair: tuple[float, float, float] = (0.22, 0.14, 0.09)
    lips: tuple[float, float, float] = (0.74, 0.36, 0.36)
    iris: tuple[float, float, float] = (0.30, 0.20, 0.12)
    shirt: tuple[float, float, float] = (0.20, 0.32, 0.55)
    background: tuple[float, float, float] = (0.62, 0.66, 0.70)
    eye_spacing: float = 0.13
    mouth_v: float = 0.20


IDENTITIES: dict[str, Identity] = {
    "ada": Identity(),
    "bo": Identity(
        name="bo",
        radii=(0.36, 0.43, 0.39),
        skin=(0.62, 0.44, 0.33),
        hair=(0.08, 0.07, 0.07),
        lips=(0.55, 0.28, 0.26),
        iris=(0.15, 0.10, 0.07),
        shirt=(0.55, 0.20, 0.18),
        background=(0.55, 0.60, 0.52),
        eye_spacing=0.135,
        mouth_v=0.21,
    ),
}


@dataclass(frozen=True)
class FaceState:
    """Time-varying expression: mouth opening / width and eye openness, all dimensionless."""

    mouth_open: float  # inner-lip half height, head units (0 = closed)
    mouth_width: float  # multiplies the neutral mouth width (<1 rounded, >1 spread)
    eye_open: float  # 1 = open, 0 = closed


def surface_z(identity: Identity, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Depth of the front surface above face coordinates ``(u, v)``."""
    a, b, c = identity.radii
    inside = np.clip(1.0 - (u / a) ** 2 - (v / b) ** 2, 0.0, None)
    return -c * np.sqrt(inside)


def mouth_geometry(identity: Identity, state: FaceState) -> dict[str, float]:
    """Centre, inner and outer half-sizes of the mouth for an expression."""
    inner_h = state.mouth_open
    centre_v = identity.mouth_v + 0.35 * inner_h  # the jaw drops a little as the mouth opens
    inner_w = 0.068 * state.mouth_width
    return {
        "centre_v": centre_v,
        "inner_w": inner_w,
        "inner_h": inner_h,
        "outer_w": inner_w + 0.018,
        "outer_h": inner_h + 0.028,
    }


def landmarks_2d(identity: Identity, state: FaceState) -> np.ndarray:
    """``[68, 2]`` face coordinates ``(u, v)`` of the landmarks for one expression."""
    a, b, _ = identity.radii
    pts = np.zeros((68, 2))
    phi = np.linspace(-0.12, np.pi + 0.12, 17)
    pts[JAW] = np.stack([-0.9 * a * np.cos(phi), 0.9 * b * np.sin(phi)], axis=-1)
    s = identity.eye_spacing
    for side, sl in ((-1, slice(17, 22)), (1, slice(22, 27))):
        t = np.linspace(-1, 1, 5)
        pts[sl] = np.stack([side * s + 0.06 * t, -0.15 + 0.018 * t**2], axis=-1)
    pts[27:31] = np.stack([np.zeros(4), np.linspace(-0.07, 0.09, 4)], axis=-1)
    pts[31:36] = np.stack([np.linspace(-0.045, 0.045, 5), 0.115 - 0.01 * (1 - np.linspace(-1, 1, 5) ** 2)], axis=-1)
    for side, sl in ((-1, EYE_RIGHT), (1, EYE_LEFT)):
        cu, cv = side * s, -0.06
        half_w, half_h = 0.05, 0.024 * state.eye_open
        # Corners and lids, ordered clockwise from the image-left corner (as in the 68 scheme).
        us = cu + half_w * np.array([-1.0, -0.4, 0.4, 1.0, 0.4, -0.4])
        vs = cv + half_h * np.array([0.0, -1.0, -1.0, 0.0, 1.0, 1.0]) * np.array([1, 0.95, 0.95, 1, 0.75, 0.75])
        pts[sl] = np.stack([us, vs], axis=-1)
    m = mouth_geometry(identity, state)
    # Outer lips: 48 left corner, 49-53 upper lip, 54 right corner, 55-59 lower lip (clockwise).
    ang = np.linspace(np.pi, 0, 7)  # left -> right over the top
    upper = np.stack([m["outer_w"] * np.cos(ang), -m["outer_h"] * np.sin(ang)], axis=-1)
    lower = np.stack([m["outer_w"] * np.cos(ang[1:-1][::-1]), m["outer_h"] * np.sin(ang[1:-1][::-1])], axis=-1)
    pts[48:55] = upper
    pts[55:60] = lower
    # Inner lips: 60 left corner, 61-63 upper, 64 right corner, 65-67 lower.
    ang = np.linspace(np.pi, 0, 5)
    pts[60:65] = np.stack([m["inner_w"] * np.cos(ang), -m["inner_h"] * np.sin(ang)], axis=-1)
    pts[65:68] = np.stack([m["inner_w"] * np.cos(ang[1:-1][::-1]), m["inner_h"] * np.sin(ang[1:-1][::-1])], axis=-1)
    pts[MOUTH, 1] += m["centre_v"]
    return pts


def landmarks_3d(identity: Identity, state: FaceState) -> np.ndarray:
    """``[68, 3]`` landmarks on the head surface, in head space (pose removed)."""
    uv = landmarks_2d(identity, state)
    return np.concatenate([uv, surface_z(identity, uv[:, 0], uv[:, 1])[:, None]], axis=-1)


def _inside_ellipse(u, v, cu, cv, wu, wv):
    return ((u - cu) / np.maximum(wu, 1e-6)) ** 2 + ((v - cv) / np.maximum(wv, 1e-6)) ** 2 <= 1.0


def shade(identity: Identity, state: FaceState, p: np.ndarray, normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Colour of surface points ``p [N, 3]`` with normals ``[N, 3]`` (light fixed to the head).

    Returns ``rgb [N, 3]`` in [0, 1] and a ``[N]`` int label (0 skin, 1 hair, 2 eye, 3 lips,
    4 mouth interior / teeth) useful for tests.
    """
    u, v, z = p[:, 0], p[:, 1], p[:, 2]
    rgb = np.tile(np.asarray(identity.skin), (p.shape[0], 1))
    label = np.zeros(p.shape[0], dtype=np.int64)
    a = identity.radii[0]

    hair = (v < -0.26 + 0.10 * (u / a) ** 2) | (z > 0.12)
    rgb[hair] = identity.hair
    label[hair] = 1

    s = identity.eye_spacing
    for side in (-1, 1):
        brow = (np.abs(u - side * s) < 0.06) & (np.abs(v - (-0.15 + 0.018 * ((u - side * s) / 0.06) ** 2)) < 0.011)
        rgb[brow & ~hair] = np.asarray(identity.hair) * 1.2
        eye = _inside_ellipse(u, v, side * s, -0.06, 0.05, 0.024 * state.eye_open) & (z < 0)
        rgb[eye] = (0.94, 0.93, 0.90)
        iris = eye & _inside_ellipse(u, v, side * s, -0.06, 0.02, 0.02)
        rgb[iris] = identity.iris
        rgb[iris & _inside_ellipse(u, v, side * s, -0.06, 0.009, 0.009)] = (0.05, 0.05, 0.05)
        label[eye] = 2
        lid = (np.abs(v - (-0.06 + 0.024 * state.eye_open)) < 0.004) & (np.abs(u - side * s) < 0.045)
        rgb[lid & ~eye] = np.asarray(identity.skin) * 0.7  # lash line, visible even when closed

    nostril = (_inside_ellipse(u, v, -0.028, 0.112, 0.014, 0.007) | _inside_ellipse(u, v, 0.028, 0.112, 0.014, 0.007))
    rgb[nostril] = np.asarray(identity.skin) * 0.45
    ridge = (np.abs(u) < 0.012) & (v > -0.05) & (v < 0.095)
    rgb[ridge] = np.minimum(np.asarray(identity.skin) * 1.12, 1.0)

    m = mouth_geometry(identity, state)
    cv = m["centre_v"]
    outer = _inside_ellipse(u, v, 0.0, cv, m["outer_w"], m["outer_h"]) & (z < 0)
    rgb[outer] = identity.lips
    label[outer] = 3
    if m["inner_h"] > 0.002:
        inner = _inside_ellipse(u, v, 0.0, cv, m["inner_w"], m["inner_h"]) & (z < 0)
        rgb[inner] = (0.32, 0.07, 0.08)
        teeth = inner & (v < cv - m["inner_h"] + min(0.016, m["inner_h"]))
        rgb[teeth] = (0.95, 0.94, 0.90)
        label[inner] = 4
    else:  # closed: a dark seam between the lips
        seam = outer & (np.abs(v - cv) < 0.0035) & (np.abs(u) < m["inner_w"])
        rgb[seam] = np.asarray(identity.lips) * 0.45

    light = np.array([-0.35, -0.45, -0.82])
    light /= np.linalg.norm(light)
    diffuse = np.clip(normal @ light, 0.0, 1.0)
    return np.clip(rgb * (0.5 + 0.55 * diffuse)[:, None], 0.0, 1.0), label
