"""Ray casting of the synthetic scene: a 3D head (skull with face relief, hair, ears) over a 3D neck and
torso over a static backdrop, through a pinhole camera.

Camera space: the camera sits at the origin looking down +z (x right, y down), like OpenCV and the ngp
frame. A part with pose ``(R, T)`` maps its local point ``p`` to ``R p + T``. The head and the torso
have separate poses (the torso follows the head only partly); the neck joins an anchor under the skull
to an anchor on the torso, so it bends and stretches between the two.

Each frame is rendered as two layers, anti-aliased with ``s x s`` rays per pixel: the head (RGBA) and
the body (neck + torso, RGBA) around it, transparent where the head covers it, as in AD-NeRF's torso
images. The frame is their composite over the backdrop, ``head over body over background``, exactly
(per ray), which is the image model of the head stage of the reference codebases (the head field
renders over torso + background); a head field therefore has to be opaque wherever the head is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talker.data.synthetic.face import (
    EAR,
    FACE_BOX,
    HAIR,
    MOUTH_PARTS,
    OPENING,
    RIM_Q,
    SKIN,
    FaceTextures,
    skin_albedo,
)
from talker.data.synthetic.identity import Identity

# Parsing colours of the AD-NeRF / RAD-NeRF preprocessing, RGB (their cv2 code tests B, G, R channels).
PARSING_COLOURS = {
    "head": (0, 0, 255),
    "neck": (0, 255, 0),
    "torso": (255, 0, 0),
    "background": (255, 255, 255),
}
HEAD, NECK, TORSO, BACKGROUND = range(4)

NECK_TOP = np.array([0.0, 0.22, 0.08])  # head space: inside the skull, above the jaw
NECK_BASE = np.array([0.0, 0.66, 0.10])  # torso space (= head space at rest)
NECK_RADIUS = 0.2
TORSO_CENTRE = np.array([0.0, 1.02, 0.14])
TORSO_RADII = np.array([0.98, 0.45, 0.36])

# Lights, fixed to the part they shine on (so the head's shading is a property of the head, as a NeRF
# of the head assumes): a key light from the upper left front and a weaker fill from the right.
KEY_LIGHT = np.array([-0.45, -0.55, -0.70]) / np.linalg.norm([-0.45, -0.55, -0.70])
FILL_LIGHT = np.array([0.65, -0.05, -0.75]) / np.linalg.norm([0.65, -0.05, -0.75])


def dot(vectors: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``[N, 3] . [3] -> [N]`` (explicit: numpy's matmul is slow for 3-wide operands)."""
    return vectors[..., 0] * v[0] + vectors[..., 1] * v[1] + vectors[..., 2] * v[2]


def rotate(vectors: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """``[N, 3]`` -> ``[N, 3]`` rows ``R v``."""
    return np.stack([dot(vectors, rotation[k]) for k in range(3)], axis=-1)


@dataclass(frozen=True)
class Camera:
    """Pinhole camera with the principal point at the image centre; pixel ``(i, j)`` covers ``[i, i+1)``."""

    width: int
    height: int
    focal: float

    @property
    def intrinsics(self) -> tuple[float, float, float, float]:
        return self.focal, self.focal, self.width / 2, self.height / 2

    def ray_directions(self, supersample: int) -> np.ndarray:
        """``[H * s, W * s, 3]`` unit directions through a regular ``s x s`` grid inside every pixel."""
        s = supersample
        ys, xs = np.mgrid[0 : self.height * s, 0 : self.width * s]
        px, py = (xs + 0.5) / s, (ys + 0.5) / s
        dirs = np.stack(
            [(px - self.width / 2) / self.focal, (py - self.height / 2) / self.focal, np.ones_like(px)], -1
        )
        return (dirs / np.linalg.norm(dirs, axis=-1, keepdims=True)).astype(np.float32)

    def project(self, points: np.ndarray) -> np.ndarray:
        """``[N, 3]`` camera-space points -> ``[N, 2]`` continuous pixel coordinates ``(x, y)``."""
        return np.stack(
            [
                self.focal * points[:, 0] / points[:, 2] + self.width / 2,
                self.focal * points[:, 1] / points[:, 2] + self.height / 2,
            ],
            axis=-1,
        )


@dataclass(frozen=True)
class Pose:
    """Rigid transform of a part: local ``p`` -> camera ``R p + T``."""

    rotation: np.ndarray
    translation: np.ndarray

    def apply(self, points: np.ndarray) -> np.ndarray:
        return rotate(np.atleast_2d(points), self.rotation).reshape(np.shape(points)) + self.translation

    def rays_to_local(self, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Camera rays from the origin -> local origin ``[3]`` and directions ``[N, 3]``."""
        return -self.rotation.T.dot(self.translation), rotate(directions, self.rotation.T)

    def camera_to_world(self) -> np.ndarray:
        """ngp-frame camera-to-world ``[4, 4]`` when the part's local frame is the world."""
        c2w = np.eye(4)
        c2w[:3, :3] = self.rotation.T
        c2w[:3, 3] = -self.rotation.T.dot(self.translation)
        return c2w


def ray_ellipsoid(origin: np.ndarray, dirs: np.ndarray, centre, radii) -> tuple[np.ndarray, np.ndarray]:
    """Entry and exit distances of rays ``origin + t dirs`` through an axis-aligned ellipsoid (inf if missed)."""
    o = ((origin - np.asarray(centre)) / np.asarray(radii)).astype(dirs.dtype)
    d = dirs / np.asarray(radii, dtype=dirs.dtype)
    a = (d * d).sum(-1)
    b = 2.0 * dot(d, o)
    c = o.dot(o) - 1.0
    disc = b * b - 4 * a * c
    hit = disc > 0
    root = np.sqrt(np.where(hit, disc, 0.0))
    near = np.where(hit, (-b - root) / (2 * a), np.inf)
    far = np.where(hit, (-b + root) / (2 * a), np.inf)
    return np.where(near > 0, near, np.inf), far


def ellipsoid_normal(points: np.ndarray, centre, radii) -> np.ndarray:
    n = (points - np.asarray(centre, dtype=points.dtype)) / np.asarray(radii, dtype=points.dtype) ** 2
    return n / (np.linalg.norm(n, axis=-1, keepdims=True) + 1e-12)


def lambert(normals: np.ndarray) -> np.ndarray:
    """Ambient + key + fill light for unit normals in the frame the lights are fixed to."""
    return (
        0.32
        + 0.62 * np.clip(dot(normals, KEY_LIGHT), 0, None)
        + 0.2 * np.clip(dot(normals, FILL_LIGHT), 0, None)
    )


# -- head ------------------------------------------------------------------------------------

HAIR_SHELL = {"short": 0.035, "bob": 0.05, "buzz": 0.008}  # thickness over the skull


def hair_shell(identity: Identity) -> tuple[np.ndarray, np.ndarray]:
    a, b, c = identity.radii
    t = HAIR_SHELL[identity.hair_style]
    return np.array([0.0, -0.015, 0.02]), np.array([a + t, b + 1.2 * t, c + t])


def hair_mask(identity: Identity, points: np.ndarray) -> np.ndarray:
    """Where the hair shell carries hair: above the hairline in front, down to the nape behind."""
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    a = identity.radii[0]
    style = identity.hair_style
    front = {"short": -0.255, "bob": -0.2, "buzz": -0.27}[style] + 0.14 * (x / a) ** 2
    back = {"short": 0.25, "bob": 0.36, "buzz": 0.2}[style]
    sides = {"short": 0.0, "bob": 0.30, "buzz": -0.04}[style]
    toward_back = np.clip((z + 0.2) / 0.32, 0.0, 1.0)
    line = (1 - toward_back) * front + toward_back * back
    at_side = np.clip((np.abs(x) - 0.72 * a) / (0.2 * a), 0.0, 1.0) * np.clip((z + 0.24) / 0.1, 0.0, 1.0)
    line = np.maximum(line, at_side * sides + (1 - at_side) * line)
    return y < line


def hair_albedo(identity: Identity, points: np.ndarray) -> np.ndarray:
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    theta = np.arctan2(x, -(y + 0.1))
    strands = 0.5 + 0.5 * np.sin(55.0 * theta + 4.0 * np.sin(9.0 * theta) + 6.0 * z)
    sheen = np.exp(-(((y + 0.33) / 0.07) ** 2))
    return np.asarray(identity.hair) * (0.72 + 0.28 * strands + 0.5 * sheen)[:, None]


EAR_RADII = np.array([0.03, 0.075, 0.045])


def ear_centres(identity: Identity) -> list[np.ndarray]:
    a = identity.radii[0]
    return [np.array([side * (a + 0.01), identity.eye_v + 0.075, 0.04]) for side in (-1, 1)]


@dataclass
class HeadHits:
    """Ray-cast head for ``N`` rays: ``hit [N]``, ``rgb [N, 3]``, ``material [N]``, head-space ``points [N, 3]``."""

    hit: np.ndarray
    rgb: np.ndarray
    material: np.ndarray
    points: np.ndarray


def cast_head(
    face: FaceTextures, origin: np.ndarray, dirs: np.ndarray, march_steps: int = 8, refine_steps: int = 7
) -> HeadHits:
    """Intersect head-space rays with the skull + face height field, the hair shell and the ears; shade."""
    identity = face.model.identity
    radii = np.asarray(identity.radii, dtype=np.float32)
    origin = origin.astype(np.float32)
    n = dirs.shape[0]
    t_skull, _ = ray_ellipsoid(origin, dirs, (0, 0, 0), radii)
    t_best = t_skull.copy()
    part = np.where(np.isfinite(t_skull), 0, -1)  # 0 skull, 1 face height field, 2 hair, 3 ear

    # Face: march the height field around the skull hit, then bisect the first crossing.
    base = origin + np.where(np.isfinite(t_skull), t_skull, 0.0)[:, None] * dirs
    u0, u1, v0, v1 = FACE_BOX
    q = (base[:, 0] / radii[0]) ** 2 + (base[:, 1] / radii[1]) ** 2
    march = np.flatnonzero(
        np.isfinite(t_skull)
        & (base[:, 0] > u0)
        & (base[:, 0] < u1)
        & (base[:, 1] > v0)
        & (base[:, 1] < v1)
        & (q < RIM_Q)
    )
    if march.size:
        d = dirs[march]
        dz = np.clip(d[:, 2], 0.2, None)
        ahead, behind_skull = face.march_bounds(base[march, 0], base[march, 1])
        t0 = t_skull[march] - (ahead + 0.01) / dz
        t1 = t_skull[march] + (behind_skull + 0.01) / dz
        ts = t0[:, None] + (t1 - t0)[:, None] * np.linspace(0.0, 1.0, march_steps)[None, :]  # [M, K]
        pts = origin + ts[..., None] * d[:, None, :]
        behind = pts[..., 2] >= face.front_depth(pts[..., 0].ravel(), pts[..., 1].ravel()).reshape(ts.shape)
        first = np.argmax(behind, axis=1)
        found = behind[np.arange(march.size), first] & (first > 0)
        lo = ts[np.arange(march.size), np.maximum(first - 1, 0)]
        hi = ts[np.arange(march.size), first]
        for _ in range(refine_steps):
            mid = 0.5 * (lo + hi)
            p = origin + mid[:, None] * d
            inside = p[:, 2] >= face.front_depth(p[:, 0], p[:, 1])
            hi, lo = np.where(inside, mid, hi), np.where(inside, lo, mid)
        t_face = np.where(found, 0.5 * (lo + hi), t_skull[march])
        t_best[march] = t_face
        part[march] = np.where(found, 1, 0)

    # Hair: the part of the shell ellipsoid above the hairline. A ray entering the shell below the
    # hairline may still reach hair inside it (through the cut at the hairline): search along the chord.
    centre, shell = hair_shell(identity)
    t_hair, t_out = ray_ellipsoid(origin, dirs, centre, shell)
    entered = np.isfinite(t_hair)
    ok = entered.copy()
    ok[entered] = hair_mask(identity, origin + t_hair[entered, None] * dirs[entered])
    inside = np.flatnonzero(entered & ~ok & (t_hair < t_best))
    if inside.size:
        d = dirs[inside]
        t0, t1 = t_hair[inside], np.minimum(t_out[inside], t_best[inside])
        ts = t0[:, None] + (t1 - t0)[:, None] * np.linspace(0.0, 1.0, 9)[None, 1:]  # [M, 8]
        pts = origin + ts[..., None] * d[:, None, :]
        hairy = hair_mask(identity, pts.reshape(-1, 3)).reshape(ts.shape)
        first = np.argmax(hairy, axis=1)
        found = hairy[np.arange(inside.size), first]
        lo = np.where(first > 0, ts[np.arange(inside.size), np.maximum(first - 1, 0)], t0)
        hi = ts[np.arange(inside.size), first]
        for _ in range(5):
            mid = 0.5 * (lo + hi)
            hit = hair_mask(identity, origin + mid[:, None] * d)
            hi, lo = np.where(hit, mid, hi), np.where(hit, lo, mid)
        t_hair[inside] = np.where(found, hi, np.inf)
        ok[inside] = found
    closer = ok & (t_hair < t_best)
    t_best[closer], part[closer] = t_hair[closer], 2
    ear_centre = np.zeros((n, 3))
    for c in ear_centres(identity):
        t_ear, _ = ray_ellipsoid(origin, dirs, c, EAR_RADII)
        closer = t_ear < t_best
        t_best[closer], part[closer], ear_centre[closer] = t_ear[closer], 3, c

    hit = part >= 0
    points = origin + np.where(hit, t_best, 0.0)[:, None] * dirs
    rgb = np.zeros((n, 3))
    material = np.full(n, -1, dtype=np.int64)
    normals = np.zeros((n, 3))
    occlusion = np.ones(n)

    sel = part == 0
    normals[sel] = ellipsoid_normal(points[sel], (0, 0, 0), radii)
    rgb[sel] = skin_albedo(identity, points[sel, 0], points[sel, 1])
    material[sel] = SKIN
    sel = part == 1
    if sel.any():
        values, labels = face.sample(points[sel, 0], points[sel, 1])
        nrm = np.stack([values[:, 1], values[:, 2], -np.ones(labels.shape[0])], axis=-1)
        normals[sel] = nrm / np.linalg.norm(nrm, axis=-1, keepdims=True)
        occlusion[sel], rgb[sel], material[sel] = values[:, 3], values[:, 4:7], labels
    sel = part == 2
    normals[sel] = ellipsoid_normal(points[sel], centre, shell)
    rgb[sel] = hair_albedo(identity, points[sel])
    material[sel] = HAIR
    sel = part == 3
    normals[sel] = ellipsoid_normal(points[sel], ear_centre[sel], EAR_RADII)
    inner = np.abs(normals[sel, 0]) > 0.85  # the bowl of the ear is darker
    rgb[sel] = np.asarray(identity.skin) * np.where(inner, 0.78, 0.95)[:, None]
    material[sel] = EAR

    shade = lambert(normals) * occlusion
    colour = rgb * shade[:, None]
    # A small highlight on the eyes: view-dependent, as NeRF's colour branch allows.
    glossy = np.isin(material, OPENING)
    if glossy.any():
        half = KEY_LIGHT - dirs[glossy]
        half /= np.linalg.norm(half, axis=-1, keepdims=True)
        colour[glossy] += 0.25 * np.clip((normals[glossy] * half).sum(-1), 0, 1)[:, None] ** 60
    return HeadHits(hit=hit, rgb=np.clip(colour, 0.0, 1.0), material=material, points=points)


# -- body ------------------------------------------------------------------------------------


def _neck(head: Pose, torso: Pose) -> tuple[np.ndarray, np.ndarray, float]:
    """Camera-space top anchor, unit axis (downwards) and length of the neck cylinder."""
    top, bottom = head.apply(NECK_TOP), torso.apply(NECK_BASE)
    axis = bottom - top
    length = float(np.linalg.norm(axis))
    return top, axis / length, length


def cast_body(identity: Identity, head: Pose, torso: Pose, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Camera rays -> body ``rgb [N, 3]`` and part ``[N]`` (NECK, TORSO or BACKGROUND where missed)."""
    n = dirs.shape[0]
    # Neck: a cylinder between the head's and the torso's anchors (camera space).
    top, axis, length = _neck(head, torso)
    d_perp = dirs - dot(dirs, axis)[:, None] * axis
    w_perp = -top - (-top).dot(axis) * axis
    a = (d_perp * d_perp).sum(-1)
    b = 2 * dot(d_perp, w_perp)
    c = w_perp.dot(w_perp) - NECK_RADIUS**2
    disc = b * b - 4 * a * c
    t_neck = np.where(disc > 0, (-b - np.sqrt(np.clip(disc, 0, None))) / (2 * a + 1e-12), np.inf)
    along = np.where(np.isfinite(t_neck), t_neck, 0.0) * dot(dirs, axis) - top.dot(axis)
    t_neck = np.where((along >= 0) & (along <= length), t_neck, np.inf)

    origin_t, dirs_t = torso.rays_to_local(dirs)
    t_torso, _ = ray_ellipsoid(origin_t, dirs_t, TORSO_CENTRE, TORSO_RADII)

    part = np.full(n, BACKGROUND)
    rgb = np.zeros((n, 3), dtype=np.float32)
    neck = np.isfinite(t_neck) & (t_neck <= t_torso)
    body = np.isfinite(t_torso) & ~neck
    skin = np.asarray(identity.skin)
    if neck.any():
        p = t_neck[neck, None] * dirs[neck]
        s = along[neck]
        normal = p - top - s[:, None] * axis
        normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
        shadow = 0.55 + 0.45 * np.clip((s - 0.1) / 0.25, 0.0, 1.0)  # the jaw shades the top of the neck
        rgb[neck] = skin * 0.93 * (lambert(rotate(normal, torso.rotation.T)) * shadow)[:, None]
        part[neck] = NECK
    if body.any():
        p = origin_t + t_torso[body, None] * dirs_t[body]
        normal = ellipsoid_normal(p, TORSO_CENTRE, TORSO_RADII)
        x, y = p[:, 0], p[:, 1]
        neckline = (x / 0.24) ** 2 + ((y - NECK_BASE[1] + 0.06) / 0.1) ** 2
        front = p[:, 2] < TORSO_CENTRE[2]
        bare = (neckline < 1.0) & front
        collar = (neckline >= 1.0) & (neckline < 1.45) & front
        shirt = np.asarray(identity.shirt)
        if identity.shirt_pattern == "stripes":
            cloth = np.where((np.sin(2 * np.pi * y / 0.075) > 0.3)[:, None], shirt * 0.45, shirt)
        elif identity.shirt_pattern == "check":
            check = np.sin(np.pi * x / 0.07) * np.sin(np.pi * y / 0.07) > 0
            cloth = np.where(check[:, None], shirt, shirt * 0.62)
        else:
            cloth = shirt * (0.92 + 0.08 * np.sin(x * 11.0 + 3 * np.sin(y * 7.0)))[:, None]
        cloth = np.where(collar[:, None], cloth * 0.72, cloth)
        albedo = np.where(bare[:, None], skin * 0.9, cloth)
        rgb[body] = albedo * lambert(normal)[:, None]
        part[body] = np.where(bare, NECK, TORSO)
    return np.clip(rgb, 0.0, 1.0), part


# -- a whole frame ---------------------------------------------------------------------------


@dataclass
class FrameLayers:
    """One rendered frame; images are float ``[H, W, C]`` in [0, 1].

    Attributes:
        image: ``head over body over background``.
        head_rgba: the head layer (straight, not premultiplied colour; alpha = coverage).
        body_rgba: the neck and torso where the head leaves them visible: alpha is the share of the
            pixel's rays *not on the head* that hit the body (0 where the head covers the pixel).
        parsing: ``[H, W]`` HEAD / NECK / TORSO / BACKGROUND: head if it covers half the pixel or more,
            else neck or torso if the body layer does, else background.
        mouth_alpha: ``[H, W]`` coverage of lips, teeth and mouth interior.
        material: ``[H, W]`` head material covering most of the pixel (-1 off the head), or None.
    """

    image: np.ndarray
    head_rgba: np.ndarray
    body_rgba: np.ndarray
    parsing: np.ndarray
    mouth_alpha: np.ndarray
    material: np.ndarray | None


def _pool(values: np.ndarray, s: int) -> np.ndarray:
    """``[H * s, W * s, C]`` -> ``[H, W, C]`` means over ``s x s`` blocks."""
    total = values[0::s, 0::s].astype(np.float32)
    for k in range(1, s * s):
        total += values[k // s :: s, k % s :: s]
    return total / (s * s)


def _rows_cols(camera: Camera, centre: np.ndarray, radius: float, s: int) -> tuple[slice, slice]:
    """Supersampled rows / columns that can see a sphere (camera space); conservative."""
    z = max(centre[2] - radius, 1e-3)
    x0, x1 = camera.focal * (centre[0] - radius) / z, camera.focal * (centre[0] + radius) / z
    y0, y1 = camera.focal * (centre[1] - radius) / z, camera.focal * (centre[1] + radius) / z
    if centre[0] - radius > 0:
        x0 = camera.focal * (centre[0] - radius) / (centre[2] + radius)
    if centre[0] + radius < 0:
        x1 = camera.focal * (centre[0] + radius) / (centre[2] + radius)
    if centre[1] - radius > 0:
        y0 = camera.focal * (centre[1] - radius) / (centre[2] + radius)
    if centre[1] + radius < 0:
        y1 = camera.focal * (centre[1] + radius) / (centre[2] + radius)
    w, h = camera.width * s, camera.height * s

    def span(lo: float, hi: float, c: float, size: int) -> slice:
        return slice(
            int(np.clip(np.floor((lo + c) * s) - 1, 0, size)),
            int(np.clip(np.ceil((hi + c) * s) + 1, 0, size)),
        )

    return span(y0, y1, camera.height / 2, h), span(x0, x1, camera.width / 2, w)


def render_frame(
    face: FaceTextures,
    head: Pose,
    torso: Pose,
    camera: Camera,
    background: np.ndarray,
    directions: np.ndarray,
    with_material: bool = False,
) -> FrameLayers:
    """Render a frame; ``directions`` are :meth:`Camera.ray_directions` (``s`` rays per pixel per axis).

    ``with_material`` also returns the majority head material per pixel (tests; costs time).
    """
    identity = face.model.identity
    s = directions.shape[0] // camera.height
    hs, ws = directions.shape[:2]

    # Head: only the rays whose rows and columns can see its bounding sphere.
    centre, shell = hair_shell(identity)
    rows, cols = _rows_cols(camera, head.apply(centre), float(shell.max()) + 0.08, s)
    head_cov = np.zeros((hs, ws, 1), dtype=np.float32)
    head_rgb = np.zeros((hs, ws, 3), dtype=np.float32)
    material = np.full((hs, ws), -1, dtype=np.int64)
    roi = directions[rows, cols]
    if roi.size:
        origin_h, dirs_h = head.rays_to_local(roi.reshape(-1, 3))
        t_bound, _ = ray_ellipsoid(origin_h, dirs_h, centre, shell + 0.08)
        near = np.flatnonzero(np.isfinite(t_bound))
        hits = cast_head(face, origin_h, dirs_h[near])
        cov, rgb, mat = np.zeros(dirs_h.shape[0]), np.zeros_like(dirs_h), np.full(dirs_h.shape[0], -1)
        cov[near], rgb[near], mat[near] = hits.hit, hits.rgb, np.where(hits.hit, hits.material, -1)
        shape = roi.shape[:2]
        head_cov[rows, cols, 0], head_rgb[rows, cols], material[rows, cols] = (
            cov.reshape(shape),
            rgb.reshape(*shape, 3),
            mat.reshape(shape),
        )

    # Body: the rays below the top of the neck.
    top, _, _ = _neck(head, torso)
    first_row = int(
        np.clip(
            np.floor((camera.focal * (top[1] - NECK_RADIUS) / (top[2] - NECK_RADIUS) + camera.height / 2) * s)
            - 1,
            0,
            hs,
        )
    )
    part = np.full((hs, ws), BACKGROUND)
    body_rgb = np.zeros((hs, ws, 3), dtype=np.float32)
    if first_row < hs:
        rgb, prt = cast_body(identity, head, torso, directions[first_row:].reshape(-1, 3))
        body_rgb[first_row:], part[first_row:] = (
            rgb.reshape(hs - first_row, ws, 3),
            prt.reshape(hs - first_row, ws),
        )
    # The body layer is what shows around the head: its coverage counts the rays the head leaves free
    # (as in AD-NeRF's torso images, transparent under the head), so that the composite is exact.
    free = 1.0 - head_cov
    body_cov = (part != BACKGROUND).astype(np.float32)[..., None] * free

    head_a = _pool(head_cov, s)
    head_c = _pool(head_rgb * head_cov, s) / np.maximum(head_a, 1e-9)
    free_a = _pool(free, s)
    body_a = _pool(body_cov, s) / np.maximum(free_a, 1e-9)  # share of the free rays
    body_c = _pool(body_rgb * body_cov, s) / np.maximum(_pool(body_cov, s), 1e-9)
    behind = body_a * body_c + (1 - body_a) * background
    image = head_a * head_c + (1 - head_a) * behind

    # Parsing: head where the head covers most of the pixel, else body (neck or torso, whichever has
    # more of it) where the body layer covers most of it, else background.
    neck_share, torso_share = (
        _pool((part == NECK)[..., None] * free, s)[..., 0],
        _pool((part == TORSO)[..., None] * free, s)[..., 0],
    )
    parsing = np.where(
        head_a[..., 0] >= 0.5,
        HEAD,
        np.where(body_a[..., 0] >= 0.5, np.where(neck_share >= torso_share, NECK, TORSO), BACKGROUND),
    )
    majority = None
    if with_material:
        majority = _pool(np.eye(16, dtype=np.float32)[material + 1], s).argmax(-1) - 1  # -1: not head
    return FrameLayers(
        image=np.clip(image, 0.0, 1.0),
        head_rgba=np.concatenate([np.where(head_a > 0, head_c, 0.0), head_a], axis=-1),
        body_rgba=np.concatenate([np.where(body_a > 0, body_c, 0.0), body_a], axis=-1),
        parsing=parsing,
        mouth_alpha=_pool(np.isin(material, MOUTH_PARTS).astype(np.float32)[..., None], s)[..., 0],
        material=majority,
    )
