"""Face tracking from MediaPipe's 478-point mesh: a canonical face, intrinsics, head poses, expressions.

The canonical face is the person's own mean face: every frame's 3D mesh (x, y in pixels, MediaPipe's
relative depth z) is aligned onto a reference by a similarity transform fitted on *rigid* vertices
(forehead, nose, eye corners, temples: points that expressions barely move); the reference is
refined as the mean of the aligned meshes (generalised Procrustes). Its scale is set so that the
outer eye corners are 0.36 units apart and its 68-point centroid lies at (0, 0.09, -0.30), the
synthetic generator's head units (the head's centre at the origin, the face towards -z, y down),
so that field and landmark-encoder bounds fit real and synthetic data alike.

* expression landmarks (R2-Talker's condition, ``aud_idexp.npy``): each frame's mesh with the head
  pose removed, in canonical units: the similarity-aligned mesh gives each point's depth, and the
  point is moved along the camera ray of its detection to that depth and taken back through the
  (smoothed) perspective pose, so it reprojects onto the detected landmark;
* intrinsics: one focal length for the clip from a field of view (default 20 degrees of the image
  height, about the focal AD-NeRF's tracker finds on its 450 px clips) or given in pixels; the
  principal point is the image centre. The focal length is nearly unobservable from a frontal
  talking head with MediaPipe's mesh: the mean face absorbs the clip's (constant) perspective
  distortion, so the reprojection error only falls as the focal grows towards orthographic.
  :func:`search_focal` measures that curve, which goes into the preprocessing report;
* head pose: per frame, perspective-n-point (OpenCV) of the canonical rigid vertices onto the
  detected ones; camera frame = OpenCV's (x right, y down, looking down +z), as talker's ngp frame;
  then a Gaussian filter over time (rotations as sign-aligned quaternions).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

from talker.data.face_landmarker import MESH_TO_68

# Mesh vertices that expressions barely move: forehead midline, nose bridge and tip, eye corners,
# temples, face sides at the cheekbones, nose wings.
RIGID = [10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 33, 133, 362, 263, 130, 359, 127, 356, 234, 454, 93, 323, 98, 327, 116, 345]
EYE_CORNERS = (33, 263)  # outer corners (68-point 36 and 45)
EYE_DISTANCE = 0.36  # canonical units between the outer eye corners (synthetic head units)
CENTROID = np.array([0.0, 0.09, -0.30])  # canonical position of the 68 landmarks' centroid


@dataclass
class Tracking:
    """A clip's face tracking in canonical head units.

    Attributes:
        canonical: ``[478, 3]`` the person's mean face mesh.
        expressions: ``[N, 478, 3]`` every frame's mesh with the pose removed.
        focal: focal length in pixels (cx, cy at the image centre).
        rotations, translations: ``[N, 3, 3]``, ``[N, 3]`` smoothed head poses, canonical -> camera ``R p + t``.
        focal_errors: ``{focal: mean rigid reprojection error in px}`` of the focal search.
    """

    canonical: np.ndarray
    expressions: np.ndarray
    focal: float
    rotations: np.ndarray
    translations: np.ndarray
    focal_errors: dict[float, float]

    @property
    def expressions68(self) -> np.ndarray:
        return self.expressions[:, MESH_TO_68]


def similarity(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Umeyama's least-squares ``s, R, t`` with ``s R src + t ~ dst`` for ``[K, 3]`` point sets."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sv, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[2] = -1.0
    rotation = u @ np.diag(d) @ vt
    scale = float((sv * d).sum() / a.var(0).sum())
    return scale, rotation, mu_d - scale * rotation @ mu_s


def canonical_face(meshes: np.ndarray, iterations: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Generalised Procrustes on the rigid vertices: ``[N, 478, 3]`` -> canonical ``[478, 3]``, aligned ``[N, 478, 3]``."""
    reference = meshes[len(meshes) // 2]
    for _ in range(iterations):
        aligned = np.empty_like(meshes, dtype=np.float64)
        for i, mesh in enumerate(meshes):
            s, r, t = similarity(mesh[RIGID], reference[RIGID])
            aligned[i] = s * mesh @ r.T + t
        reference = aligned.mean(0)
    # Canonical units and placement (see the module docstring).
    scale = EYE_DISTANCE / np.linalg.norm(reference[EYE_CORNERS[0]] - reference[EYE_CORNERS[1]])
    shift = CENTROID - scale * reference[MESH_TO_68].mean(0)
    return scale * reference + shift, scale * aligned + shift


def intrinsics_matrix(focal: float, width: int, height: int) -> np.ndarray:
    return np.array([[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]])


def project(points: np.ndarray, rotation: np.ndarray, translation: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``[..., K, 3]`` canonical points through poses ``[..., 3, 3]``, ``[..., 3]`` -> ``[..., K, 2]`` continuous pixels."""
    cam = np.einsum("...ij,...kj->...ki", rotation, points) + translation[..., None, :]
    xy = cam[..., :2] / cam[..., 2:3]
    return xy * np.array([k[0, 0], k[1, 1]]) + k[:2, 2]


def solve_poses(canonical: np.ndarray, image_points: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame PnP of ``canonical [K, 3]`` onto ``image_points [N, K, 2]`` -> ``R [N, 3, 3]``, ``t [N, 3]``."""
    import cv2

    obj = np.ascontiguousarray(canonical, dtype=np.float64)
    rotations, translations = [], []
    rvec = tvec = None
    for pts in image_points:
        img = np.ascontiguousarray(pts, dtype=np.float64)
        if rvec is None:
            ok, rvec, tvec = cv2.solvePnP(obj, img, k, None, flags=cv2.SOLVEPNP_EPNP)
        ok, rvec, tvec = cv2.solvePnP(obj, img, k, None, rvec.copy(), tvec.copy(), useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
        rotations.append(cv2.Rodrigues(rvec)[0])
        translations.append(tvec.ravel().copy())
    return np.stack(rotations), np.stack(translations)


def search_focal(
    canonical: np.ndarray, image_points: np.ndarray, width: int, height: int, frames: int = 30
) -> tuple[float, dict[float, float]]:
    """Focal length (px) with the smallest mean reprojection error of the rigid vertices, on a grid of
    fields of view (6-60 degrees of the image height), over up to ``frames`` evenly spaced frames."""
    subset = image_points[np.linspace(0, len(image_points) - 1, min(frames, len(image_points))).round().astype(int)]
    errors = {}
    for fov in np.geomspace(6.0, 60.0, 25):
        focal = float(0.5 * height / np.tan(np.deg2rad(fov) / 2))
        k = intrinsics_matrix(focal, width, height)
        r, t = solve_poses(canonical, subset, k)
        errors[round(focal, 2)] = float(np.linalg.norm(project(canonical, r, t, k) - subset, axis=-1).mean())
    best = min(errors, key=errors.get)
    return best, errors


def smooth_poses(rotations: np.ndarray, translations: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian filter of ``sigma`` frames over sign-aligned quaternions and translations (0: none)."""
    if sigma <= 0 or len(rotations) < 2:
        return rotations, translations
    quats = Rotation.from_matrix(rotations).as_quat()
    for i in range(1, len(quats)):  # q and -q are the same rotation: keep the sequence continuous
        if np.dot(quats[i], quats[i - 1]) < 0:
            quats[i] = -quats[i]
    quats = ndimage.gaussian_filter1d(quats, sigma, axis=0, mode="nearest")
    smooth_r = Rotation.from_quat(quats / np.linalg.norm(quats, axis=1, keepdims=True)).as_matrix()
    return smooth_r, ndimage.gaussian_filter1d(translations, sigma, axis=0, mode="nearest")


def focal_from_fov(fov_deg: float, height: int) -> float:
    return float(0.5 * height / np.tan(np.deg2rad(fov_deg) / 2))


def unproject_expressions(aligned: np.ndarray, pixels: np.ndarray, rotations, translations, k) -> np.ndarray:
    """Canonical ``aligned [N, K, 3]`` points moved along the camera rays of their detections ``pixels
    [N, K, 2]`` (keeping their depth under the pose) and taken back to canonical space."""
    cam = np.einsum("nij,nkj->nki", rotations, aligned) + translations[:, None, :]
    depth = cam[..., 2:3]
    rays = np.concatenate([(pixels - k[:2, 2]) / np.array([k[0, 0], k[1, 1]]), np.ones_like(depth)], -1)
    return np.einsum("nji,nkj->nki", rotations, rays * depth - translations[:, None, :])


def track(meshes: np.ndarray, width: int, height: int, smooth: float, focal: float) -> Tracking:
    """Canonical face, smoothed head poses and expressions of ``[N, 478, 3]`` meshes (x, y in pixels)."""
    canonical, aligned = canonical_face(meshes.astype(np.float64))
    image_points = meshes[:, RIGID, :2].astype(np.float64)
    _, errors = search_focal(canonical[RIGID], image_points, width, height)
    k = intrinsics_matrix(focal, width, height)
    rotations, translations = solve_poses(canonical[RIGID], image_points, k)
    rotations, translations = smooth_poses(rotations, translations, smooth)
    expressions = unproject_expressions(aligned, meshes[..., :2].astype(np.float64), rotations, translations, k)
    return Tracking(canonical, expressions.astype(np.float32), float(focal), rotations, translations, errors)


def fill_missing(values: np.ndarray, found: np.ndarray) -> tuple[np.ndarray, list[dict]]:
    """Fill frames without a face: linear interpolation between the nearest detected frames inside the
    clip, the nearest detected frame at either end. Returns the filled ``values`` and one record per
    filled frame ``{frame, handling}``."""
    found_ids = np.flatnonzero(found)
    filled = values.copy()
    report = []
    for i in np.flatnonzero(~found):
        before, after = found_ids[found_ids < i], found_ids[found_ids > i]
        if len(before) and len(after):
            a, b = int(before[-1]), int(after[0])
            w = (i - a) / (b - a)
            filled[i] = (1 - w) * values[a] + w * values[b]
            report.append({"frame": int(i), "handling": f"interpolated between frames {a} and {b}"})
        else:
            src = int(before[-1]) if len(before) else int(after[0])
            filled[i] = values[src]
            report.append({"frame": int(i), "handling": f"copied from frame {src} (no face detected beyond it)"})
    return filled, report
