"""Person / background segmentation and head / neck / torso parsing without a segmentation network.

MediaPipe's selfie and hair segmenters need model files that are not available offline, and the
reference codebases' BiSeNet face parser needs downloaded weights. Here everything is derived from
the face mesh and the frames themselves:

* person vs background: OpenCV's GrabCut (colour GMMs + graph cut) per frame, initialised with a
  trimap laid out from the face mesh: the face hull, a strip under the chin and the chest below it are sure person, a
  head ellipse (hair) and a widening torso region below the chin are probably person, the rest of an
  envelope around them probably background, and everything outside that envelope sure background.
  A majority vote over three consecutive frames removes flicker.
* head / neck / torso: person pixels above the jaw line (68-point jaw from the mouth corners' level,
  continued horizontally to the image sides) and the face hull are head; below it, pixels within
  the jaw's width whose chroma (YCrCb) matches the lower face's skin and that connect to the chin
  are neck; the other person pixels are torso.
* clean background: per pixel, the median over the frames where it is uncovered (person mask grown
  by a margin); pixels never uncovered are filled by OpenCV's Telea inpainting.
"""

from __future__ import annotations

import numpy as np

HEAD, NECK, TORSO, BACKGROUND = range(4)
# AD-NeRF's parsing colours (the same as talker.data.synthetic.scene.PARSING_COLOURS).
PALETTE = np.array([(0, 0, 255), (0, 255, 0), (255, 0, 0), (255, 255, 255)], dtype=np.uint8)


def _cv2():
    import cv2

    cv2.setNumThreads(1)
    return cv2


def face_geometry(mesh: np.ndarray) -> dict:
    """Face hull ``[K, 1, 2]`` int32 and its box (x0, y0, x1, y1, width, height, centre x)."""
    cv2 = _cv2()
    hull = cv2.convexHull(np.round(mesh[:, :2]).astype(np.int32))
    x0, y0 = mesh[:, :2].min(0)
    x1, y1 = mesh[:, :2].max(0)
    return {"hull": hull, "x0": x0, "y0": y0, "x1": x1, "y1": y1, "w": x1 - x0, "h": y1 - y0, "cx": (x0 + x1) / 2}


def trimap(shape: tuple[int, int], mesh: np.ndarray, lms: np.ndarray) -> np.ndarray:
    """GrabCut's initial mask (GC_BGD, GC_FGD, GC_PR_BGD, GC_PR_FGD) laid out from the face mesh."""
    cv2 = _cv2()
    h, w = shape
    g = face_geometry(mesh)
    fw, fh, cx = g["w"], g["h"], g["cx"]
    chin = float(lms[8, 1])
    probable = np.zeros(shape, np.uint8)
    centre = (int(round(cx)), int(round((g["y0"] + g["y1"]) / 2 - 0.12 * fh)))
    cv2.ellipse(probable, centre, (int(0.8 * fw), int(0.72 * fh)), 0, 0, 360, 1, -1)
    torso = np.array([[cx - 0.45 * fw, chin], [cx + 0.45 * fw, chin], [cx + 1.9 * fw, h + fh], [cx - 1.9 * fw, h + fh]])
    cv2.fillPoly(probable, [np.round(torso).astype(np.int32)], 1)
    margin = int(0.35 * fw) * 2 + 1
    envelope = cv2.dilate(probable, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (margin, margin)))
    sure = np.zeros(shape, np.uint8)
    cv2.fillPoly(sure, [g["hull"]], 1)
    sure = cv2.erode(sure, np.ones((3, 3), np.uint8), iterations=max(1, int(0.03 * fw)))
    neck = np.array([[cx - 0.2 * fw, chin], [cx + 0.2 * fw, chin + 0.25 * fh]])
    cv2.rectangle(sure, tuple(np.round(neck[0]).astype(int)), tuple(np.round(neck[1]).astype(int)), 1, -1)
    # the chest straight below the chin (head-and-shoulders framing)
    chest = np.array([[cx - 0.3 * fw, chin + 0.3 * fh], [cx + 0.3 * fw, chin + 0.3 * fh], [cx + 0.9 * fw, h], [cx - 0.9 * fw, h]])
    cv2.fillPoly(sure, [np.round(chest).astype(np.int32)], 1)
    mask = np.full(shape, cv2.GC_BGD, np.uint8)
    mask[envelope > 0] = cv2.GC_PR_BGD
    mask[probable > 0] = cv2.GC_PR_FGD
    mask[sure > 0] = cv2.GC_FGD
    return mask


def person_mask(image: np.ndarray, mesh: np.ndarray, lms: np.ndarray, iterations: int = 3) -> np.ndarray:
    """``[H, W]`` bool person mask of one frame (GrabCut from the landmark trimap, largest region, holes filled)."""
    cv2 = _cv2()
    mask = trimap(image.shape[:2], mesh, lms)
    if (mask == cv2.GC_BGD).any() or (mask == cv2.GC_PR_BGD).any():
        bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
        cv2.grabCut(np.ascontiguousarray(image[..., ::-1]), mask, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    person = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(person, connectivity=8)
    if count > 1:  # the region holding the face
        face_label = np.bincount(labels[mask == cv2.GC_FGD].ravel(), minlength=count)[1:].argmax() + 1
        person = (labels == face_label).astype(np.uint8)
    # fill holes: background is what the image border reaches
    flood = np.pad(1 - person, 1, constant_values=1)
    cv2.floodFill(flood, None, (0, 0), 2)
    return (person > 0) | (flood[1:-1, 1:-1] == 1)


def temporal_vote(masks: np.ndarray) -> np.ndarray:
    """Majority of each frame and its two neighbours (end frames: themselves twice)."""
    padded = np.concatenate([masks[:1], masks, masks[-1:]]).astype(np.uint8)
    return (padded[:-2] + padded[1:-1] + padded[2:]) >= 2


def parse(image: np.ndarray, person: np.ndarray, mesh: np.ndarray, lms: np.ndarray, skin_tolerance: float = 3.5) -> np.ndarray:
    """``[H, W]`` uint8 labels HEAD / NECK / TORSO / BACKGROUND of one frame (see the module docstring)."""
    cv2 = _cv2()
    h, w = person.shape
    g = face_geometry(mesh)
    fw, fh = g["w"], g["h"]
    # below the jaw: the jaw from the mouth corners' level (points 3..13), continued to the sides
    jaw = lms[3:14]
    below = np.zeros((h, w), np.uint8)
    outline = np.concatenate([[[-1, jaw[0, 1]]], jaw, [[w, jaw[-1, 1]], [w, h], [-1, h]]])
    cv2.fillPoly(below, [np.round(outline).astype(np.int32)], 1)
    face = np.zeros((h, w), np.uint8)
    cv2.fillPoly(face, [g["hull"]], 1)
    below = (below > 0) & (face == 0)
    labels = np.full((h, w), BACKGROUND, np.uint8)
    labels[person & ~below] = HEAD
    labels[face > 0] = HEAD

    # neck: skin-coloured person pixels under the jaw, connected to the chin
    ycc = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2YCrCb)[..., 1:].astype(np.float32)
    lower_face = np.zeros((h, w), np.uint8)
    cv2.fillPoly(lower_face, [np.round(np.concatenate([lms[2:15], lms[[35, 27, 31]]])).astype(np.int32)], 1)
    skin = ycc[(lower_face > 0) & person]
    candidates = person & below
    if len(skin) >= 10:
        median = np.median(skin, axis=0)
        spread = np.maximum(1.4826 * np.median(np.abs(skin - median), axis=0), 2.0)
        skin_like = (np.abs(ycc - median) / spread).max(-1) < skin_tolerance
        xs = np.arange(w)[None, :]
        ys = np.arange(h)[:, None]
        band = (xs >= lms[2, 0] - 0.1 * fw) & (xs <= lms[14, 0] + 0.1 * fw) & (ys <= lms[8, 1] + 0.9 * fh)
        neck = (candidates & skin_like & band).astype(np.uint8)
        neck = cv2.morphologyEx(neck, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        count, comp = cv2.connectedComponents(neck, connectivity=8)
        chin_zone = np.zeros((h, w), np.uint8)
        cv2.polylines(chin_zone, [np.round(jaw).astype(np.int32)], False, 1, thickness=max(3, int(0.08 * fh)))
        touching = set(np.unique(comp[(chin_zone > 0) & (neck > 0)])) - {0}
        neck_mask = np.isin(comp, list(touching)) if touching else np.zeros((h, w), bool)
        neck_mask = cv2.morphologyEx(neck_mask.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)) > 0
        labels[candidates & neck_mask] = NECK
        labels[candidates & ~neck_mask] = TORSO
    else:
        labels[candidates] = TORSO
    return labels


def clean_background(frames: np.ndarray, person: np.ndarray, margin: int) -> tuple[np.ndarray, float]:
    """``[N, H, W, 3]`` uint8 frames and ``[N, H, W]`` person masks -> background ``[H, W, 3]`` uint8 and
    the share of pixels never uncovered (filled by inpainting)."""
    cv2 = _cv2()
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
    covered = np.stack([cv2.dilate(m.astype(np.uint8), kernel) > 0 for m in person])
    n, h, w, _ = frames.shape
    background = np.zeros((h, w, 3), np.float32)
    for r0 in range(0, h, 32):  # median over uncovered frames, a band of rows at a time (memory)
        band = frames[:, r0 : r0 + 32].astype(np.float32)
        band[covered[:, r0 : r0 + 32]] = np.nan
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                background[r0 : r0 + 32] = np.nanmedian(band, axis=0)
    never = covered.all(0)
    background = np.nan_to_num(background, nan=0.0)
    filled = np.clip(np.round(background), 0, 255).astype(np.uint8)
    if never.any():
        filled = cv2.inpaint(filled, never.astype(np.uint8), max(3, margin), cv2.INPAINT_TELEA)
    return filled, float(never.mean())


def feather(mask: np.ndarray) -> np.ndarray:
    """``[H, W]`` bool -> float32 alpha with a one-pixel soft edge."""
    cv2 = _cv2()
    return cv2.GaussianBlur(mask.astype(np.float32), (3, 3), 0.7)
