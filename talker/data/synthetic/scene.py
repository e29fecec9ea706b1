"""Renders one frame of the synthetic scene: ray-cast head over 2D neck, torso and background.

Coordinates: the camera sits at the origin looking down +z (x right, y down); the head has
rotation ``R`` and translation ``T`` in camera space, so a head-space point ``p`` is at
``R p + T``. The NeRF's camera-to-world (ngp frame = head space) is therefore
``[R^T | -R^T T]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talker.data.synthetic.face import FaceState, Identity, shade

# Parsing colours of the AD-NeRF / RAD-NeRF preprocessing (RGB).
PARSING_COLOURS = {
    "head": (0, 0, 255),
    "neck": (0, 255, 0),
    "torso": (255, 0, 0),
    "background": (255, 255, 255),
}
HEAD, NECK, TORSO, BACKGROUND = range(4)


@dataclass
class FrameLayers:
    """One rendered frame (float images in [0, 1], shape ``[H, W, C]``)."""

    image: np.ndarray  # composite: head over torso/neck over background
    head_alpha: np.ndarray  # [H, W] coverage of the head
    torso_rgba: np.ndarray  # [H, W, 4] neck + torso where not covered by the head
    parsing: np.ndarray  # [H, W] int: HEAD / NECK / TORSO / BACKGROUND (majority of sub-samples)


def camera_to_world(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """ngp-frame camera-to-world matrix of a head pose given in camera space."""
    c2w = np.eye(4)
    c2w[:3, :3] = rotation.T
    c2w[:3, 3] = -rotation.T @ translation
    return c2w


def background_image(identity: Identity, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A static, smoothly textured backdrop (a wall with soft shapes)."""
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    base = np.asarray(identity.background)
    img = base * (0.85 + 0.25 * (1 - y))[..., None]
    for _ in range(6):
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.08, 0.25)
        tint = rng.uniform(-0.12, 0.12, size=3)
        img += tint * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))[..., None]
    img += 0.03 * np.sin(2 * np.pi * 9 * x)[..., None] * np.asarray([1.0, 0.9, 0.8])
    return np.clip(img, 0.0, 1.0)


def render_frame(
    identity: Identity,
    state: FaceState,
    rotation: np.ndarray,
    translation: np.ndarray,
    intrinsics: tuple[float, float, float, float],
    background: np.ndarray,
    supersample: int = 2,
) -> FrameLayers:
    """Render a frame at the resolution of ``background`` with ``supersample^2`` rays per pixel."""
    height, width = background.shape[:2]
    fx, fy, cx, cy = intrinsics
    s = supersample
    ys, xs = np.mgrid[0 : height * s, 0 : width * s]
    px, py = (xs + 0.5) / s, (ys + 0.5) / s  # sub-pixel centres in pixel units
    dirs = np.stack([(px - cx) / fx, (py - cy) / fy, np.ones_like(px)], axis=-1).reshape(-1, 3)
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)

    # Head: ray-ellipsoid intersection in head space.
    radii = np.asarray(identity.radii)
    origin_h = -rotation.T @ translation
    dirs_h = dirs @ rotation  # = (R^T d) for each row
    o, d = origin_h / radii, dirs_h / radii
    a = (d * d).sum(-1)
    b = 2 * (d @ o)
    c = o @ o - 1.0
    disc = b * b - 4 * a * c
    hit = disc > 0
    t = (-b - np.sqrt(np.where(hit, disc, 0.0))) / (2 * a)
    hit &= t > 0
    points = origin_h + t[:, None] * dirs_h
    normals = points / radii**2
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True) + 1e-12
    head_rgb = np.zeros_like(dirs)
    head_rgb[hit], _ = shade(identity, state, points[hit], normals[hit])

    # Neck and torso: image-space layers that follow the head fully (neck) or partly (torso).
    head_px = fx * translation[0] / translation[2] + cx, fy * translation[1] / translation[2] + cy
    scale_px = fx / translation[2]
    pxf, pyf = px.reshape(-1), py.reshape(-1)
    neck_x = head_px[0] + scale_px * rotation[0, 1] * 0.3  # tilting the head swings the neck
    neck = (np.abs(pxf - neck_x) < 0.2 * scale_px) & (pyf > head_px[1]) & (pyf < height * 1.1)
    torso_cx = cx + 0.4 * (head_px[0] - cx)
    torso_cy = height * 1.08 + 0.3 * (head_px[1] - cy)
    torso = ((pxf - torso_cx) / (0.62 * width)) ** 2 + ((pyf - torso_cy) / (0.26 * height)) ** 2 <= 1.0
    shirt = np.asarray(identity.shirt) * (0.85 + 0.15 * np.sin((pxf - torso_cx) / scale_px * 9.0))[:, None]
    neck_rgb = np.asarray(identity.skin) * 0.78 * (0.9 + 0.1 * np.cos((pxf - neck_x) / (0.2 * scale_px)))[:, None]

    label = np.full(pxf.shape, BACKGROUND)
    label[neck] = NECK
    label[torso] = TORSO
    label[hit] = HEAD
    bg = np.repeat(np.repeat(background, s, axis=0), s, axis=1).reshape(-1, 3)
    torso_layer = np.where((label == TORSO)[:, None], shirt, neck_rgb)
    image = np.where((label == HEAD)[:, None], head_rgb, np.where((label == BACKGROUND)[:, None], bg, torso_layer))

    def pool(values: np.ndarray) -> np.ndarray:
        v = values.reshape(height, s, width, s, -1)
        return v.mean(axis=(1, 3))

    body = ((label == NECK) | (label == TORSO)).astype(np.float64)[:, None]
    body_cov = pool(body)
    torso_rgb = pool(torso_layer * body) / np.maximum(body_cov, 1e-9)
    counts = pool(np.eye(4)[label])  # fraction of sub-samples per class
    return FrameLayers(
        image=pool(image),
        head_alpha=counts[..., HEAD],
        torso_rgba=np.concatenate([np.where(body_cov > 0, torso_rgb, 0.0), body_cov], axis=-1),
        parsing=counts.argmax(-1),
    )
