"""Static, textured backdrops: a plastered wall, a bookshelf, a window, a studio spot."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from talker.data.synthetic.identity import Identity

STYLES = ("wall", "shelf", "window", "studio")


def background_image(identity: Identity, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """``[H, W, 3]`` float backdrop in [0, 1] for ``identity.background``, drawn at 2x and box-filtered."""
    if identity.background not in STYLES:
        raise ValueError(f"unknown background style {identity.background!r}; choices: {STYLES}")
    h2, w2 = 2 * height, 2 * width
    y, x = (np.mgrid[0:h2, 0:w2] + 0.5) / np.array([h2, w2])[:, None, None]  # [0, 1], y down
    wall = np.asarray(identity.wall)
    img = wall * (0.82 + 0.26 * (1.0 - y))[..., None]
    # Plaster: smoothed noise at two scales, the same for every frame.
    for sigma, gain in ((0.05, 0.10), (0.008, 0.05)):
        noise = ndimage.gaussian_filter(rng.standard_normal((h2, w2)), sigma * max(h2, w2), mode="wrap")
        img *= (1.0 + gain * noise / (noise.std() + 1e-9))[..., None]
    style = identity.background
    if style == "shelf":
        for top in (0.16, 0.46):
            board = (y > top + 0.2) & (y < top + 0.225)
            img[board] = (0.36, 0.24, 0.15)
            left = rng.uniform(0.0, 0.06)
            while left < 0.98:
                w, hgt = rng.uniform(0.018, 0.045), rng.uniform(0.11, 0.19)
                book = (x > left) & (x < left + w) & (y < top + 0.2) & (y > top + 0.2 - hgt)
                colour = rng.uniform(0.15, 0.8, size=3)
                img[book] = colour * (0.8 + 0.2 * np.cos((x[book] - left) / w * np.pi - np.pi / 2))[..., None]
                left += w + rng.uniform(0.0, 0.01) + (rng.uniform(0.05, 0.12) if rng.random() < 0.15 else 0.0)
    elif style == "window":
        x0, x1, y0, y1 = 0.58, 0.95, 0.06, 0.62
        pane = (x > x0) & (x < x1) & (y > y0) & (y < y1)
        sky = np.array([0.78, 0.86, 0.95]) * (0.9 + 0.15 * (1 - (y - y0) / (y1 - y0)))[..., None]
        img = np.where(pane[..., None], sky, img)
        bars = pane & ((np.abs(x - (x0 + x1) / 2) < 0.008) | (np.abs(y - (y0 + y1) / 2) < 0.008))
        frame = ((x > x0 - 0.015) & (x < x1 + 0.015) & (y > y0 - 0.015) & (y < y1 + 0.015)) & ~pane
        img[bars | frame] = (0.92, 0.91, 0.88)
        curtain = (x > 0.45) & (x < 0.57)
        img[curtain] = np.array([0.55, 0.25, 0.22]) * (0.75 + 0.25 * np.sin(x[curtain] * 180.0))[..., None]
    elif style == "studio":
        spot = np.exp(-(((x - 0.5) / 0.38) ** 2 + ((y - 0.42) / 0.45) ** 2))
        img *= (0.55 + 0.75 * spot)[..., None]
    else:  # wall: a few soft tinted patches of light
        for _ in range(5):
            cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.1, 0.3)
            img += (
                rng.uniform(-0.08, 0.08, size=3)
                * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))[..., None]
            )
    img = ndimage.gaussian_filter(
        img, sigma=(0.0025 * h2, 0.0025 * w2, 0), mode="nearest"
    )  # slightly out of focus
    return np.clip(img.reshape(height, 2, width, 2, 3).mean(axis=(1, 3)), 0.0, 1.0)
