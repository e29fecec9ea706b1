"""The on-disk dataset layout shared with AD-NeRF, RAD-NeRF, ER-NeRF and R2-Talker's public code.

::

    <root>/
      transforms_train.json, transforms_val.json   focal_len, cx, cy, (h, w), frames[{img_id, aud_id,
                                  transform_matrix (NeRF camera-to-world), optional eye_ratio}]
      gt_imgs/<img_id>.jpg        frames over the clean background
      ori_imgs/<img_id>.jpg       raw frames; ori_imgs/<img_id>.lms: [68, 2] image landmarks (x, y),
                                  pixel centres at integer coordinates
      torso_imgs/<img_id>.png     RGBA neck + torso (head and background transparent)
      parsing/<img_id>.png        head (0,0,255) / neck (0,255,0) / torso (255,0,0) / bg (255,255,255)
      bc.jpg                      clean background
      aud.wav                     16 kHz mono audio
      aud.npy, aud_ds.npy, aud_eo.npy, aud_hu.npy   [N, 16, C] audio feature windows per frame
      aud_idexp.npy               [N, 68, 3] canonical (pose-free) landmarks, indexed by aud_id
      aud_idexp_train.npy / aud_idexp_val.npy   the same, per split
      au.csv                      OpenFace action units (ER-NeRF reads the blink, ' AU45_r')

talker's additions (extra files; existing files keep their meaning, so that processed datasets of
the reference codebases load unchanged):

      manifest.json               generator / preprocessor, parameters, num_frames, file checksums
      aud_mel.npy                 [N, 16, 80] log-mel windows (talker.audio.LogMel)
      head_imgs/<img_id>.png      RGBA head layer (synthetic data): gt = head over torso over bc
      synthetic_truth.npz         exact expression, eye openness, poses and lips boxes (synthetic data)
      boxes.npz                   face_rect, lips_rect [N, 4] (y0, y1, x0, x1) from the landmarks (talker.preprocess)
      preprocess_report.json, preview.png   talker.preprocess: frames without a face and how they were
                                  filled, tracking and reprojection errors; a contact sheet of the results
      .preprocess/                talker.preprocess's step stamps and intermediates (resume state)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from talker.data.cameras import nerf_to_ngp
from talker.errors import TalkerError

SPLITS = ("train", "val")
MANIFEST = "manifest.json"
LANDMARKS_ALL = "aud_idexp.npy"
# Per-frame audio feature windows, [N, 16, C]: DeepSpeech (aud_ds), wav2vec2 (aud_eo / aud), HuBERT
# (aud_hu, ER-NeRF), and talker's weight-free log-mel (aud_mel).
AUDIO_FEATURES = ("aud.npy", "aud_ds.npy", "aud_eo.npy", "aud_hu.npy", "aud_mel.npy")


class DatasetError(TalkerError, ValueError):
    """A dataset on disk is missing something or is inconsistent; the message names the file."""


def transforms_path(root: Path, split: str) -> Path:
    return root / f"transforms_{split}.json"


def read_transforms(root: Path, split: str) -> dict:
    path = transforms_path(root, split)
    if not path.is_file():
        raise DatasetError(f"{path}: missing (a dataset needs transforms_train.json and transforms_val.json)")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from exc
    for key in ("focal_len", "cx", "cy", "frames"):
        if key not in meta:
            raise DatasetError(f"{path}: missing key '{key}'")
    if not meta["frames"]:
        raise DatasetError(f"{path}: no frames")
    for i, frame in enumerate(meta["frames"]):
        for key in ("img_id", "aud_id", "transform_matrix"):
            if key not in frame:
                raise DatasetError(f"{path}: frame {i} has no '{key}'")
    return meta


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def polygon_area(points: np.ndarray) -> float:
    """Area of a simple polygon ``[K, 2]`` (shoelace formula)."""
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def eye_area_ratio(lms: np.ndarray, height: int, width: int) -> float:
    """RAD-NeRF's eye feature: area of both eye polygons (landmarks 36-47) in percent of the image."""
    return (polygon_area(lms[36:42]) + polygon_area(lms[42:48])) / (height * width) * 100.0


def _check_array(path: Path, array: np.ndarray, what: str) -> None:
    if not np.issubdtype(array.dtype, np.number):
        raise DatasetError(f"{path}: dtype {array.dtype} is not numeric ({what})")
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise DatasetError(f"{path}: contains NaN or infinite values")


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r")
    except (ValueError, OSError) as exc:
        raise DatasetError(f"{path}: not a readable .npy file ({exc})") from exc


def _check_frame_count(path: Path, count: int, frames: dict[str, list[dict]], expected: int | None) -> None:
    """Per-frame arrays are indexed by aud_id: they must cover every one (and match ``expected`` if known)."""
    if expected is not None and count != expected:
        raise DatasetError(f"{path}: {count} frames, but the dataset has {expected} (frame count mismatch)")
    for split, split_frames in frames.items():
        worst = max(split_frames, key=lambda f: f["aud_id"])
        if worst["aud_id"] >= count:
            raise DatasetError(f"{path}: {count} frames, but transforms_{split}.json refers to aud_id {worst['aud_id']}")


def validate_dataset(root: str | Path, check_checksums: bool = True) -> None:
    """Raise :class:`DatasetError` naming the first problem found, or return if the dataset is usable.

    Checks, in order: both transforms files and their keys; every frame's gt image, torso image and
    landmark file (present, same size as bc.jpg, 68 finite points); finite 4x4 poses; the landmark
    array ``aud_idexp.npy`` and every audio feature file present (:data:`AUDIO_FEATURES`): shape,
    finite values, one row per frame; the per-split landmark files against their split's length;
    and, when a manifest is present, its frame count and every file checksum it lists.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder does not exist")
    frames = {split: read_transforms(root, split)["frames"] for split in SPLITS}
    manifest_path = root / MANIFEST
    manifest = None
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{manifest_path}: not valid JSON ({exc})") from exc
    expected = manifest.get("num_frames") if manifest else None
    if expected is not None:
        listed = sum(len(f) for f in frames.values())
        if listed != expected:
            raise DatasetError(f"{root}: transforms list {listed} frames, {MANIFEST} says {expected} (frame count mismatch)")

    if not (root / "bc.jpg").is_file():
        raise DatasetError(f"{root / 'bc.jpg'}: missing (clean background image)")
    try:
        size = Image.open(root / "bc.jpg").size
    except OSError as exc:
        raise DatasetError(f"{root / 'bc.jpg'}: not a readable image ({exc})") from exc
    for split, split_frames in frames.items():
        for frame in split_frames:
            img_id = frame["img_id"]
            for path in (
                root / "gt_imgs" / f"{img_id}.jpg",
                root / "torso_imgs" / f"{img_id}.png",
                root / "ori_imgs" / f"{img_id}.lms",
            ):
                if not path.is_file():
                    raise DatasetError(f"{path}: missing (frame {img_id} of transforms_{split}.json)")
            for path in (root / "gt_imgs" / f"{img_id}.jpg", root / "torso_imgs" / f"{img_id}.png"):
                try:
                    frame_size = Image.open(path).size
                except OSError as exc:
                    raise DatasetError(f"{path}: not a readable image ({exc})") from exc
                if frame_size != size:
                    raise DatasetError(f"{path}: size {frame_size} differs from bc.jpg {size}")
            lms_path = root / "ori_imgs" / f"{img_id}.lms"
            try:
                lms = np.loadtxt(lms_path, ndmin=2)
            except ValueError as exc:
                raise DatasetError(f"{lms_path}: not a table of numbers ({exc})") from exc
            if lms.shape != (68, 2):
                raise DatasetError(f"{lms_path}: shape {lms.shape}, expected 68 rows of (x, y)")
            _check_array(lms_path, lms, "image landmarks")
            matrix = np.asarray(frame["transform_matrix"], dtype=np.float64)
            if matrix.shape != (4, 4) or not np.isfinite(matrix).all():
                raise DatasetError(f"{transforms_path(root, split)}: frame {img_id} transform_matrix is not a finite 4x4")

    landmarks_path = root / LANDMARKS_ALL
    if not landmarks_path.is_file():
        raise DatasetError(f"{landmarks_path}: missing ([N, 68, 3] canonical landmarks)")
    landmarks = _load_npy(landmarks_path)
    if landmarks.ndim != 3 or landmarks.shape[1:] != (68, 3):
        raise DatasetError(f"{landmarks_path}: shape {landmarks.shape}, expected [N, 68, 3]")
    _check_array(landmarks_path, landmarks, "landmarks")
    _check_frame_count(landmarks_path, landmarks.shape[0], frames, expected)
    for split in SPLITS:
        path = root / f"aud_idexp_{split}.npy"
        if path.is_file():
            part = _load_npy(path)
            if part.shape != (len(frames[split]), 68, 3):
                raise DatasetError(f"{path}: shape {part.shape}, expected [{len(frames[split])}, 68, 3] (the frames of transforms_{split}.json)")
            _check_array(path, part, "landmarks")
    for name in AUDIO_FEATURES:
        path = root / name
        if not path.is_file():
            continue
        features = _load_npy(path)
        if features.ndim not in (2, 3):
            raise DatasetError(f"{path}: shape {features.shape}, expected [N, 16, C] windows (or [N, 16] labels)")
        _check_array(path, features, "audio features")
        _check_frame_count(path, features.shape[0], frames, expected)

    if check_checksums and manifest is not None:
        for rel, expected_sum in manifest.get("files", {}).items():
            path = root / rel
            if not path.is_file():
                raise DatasetError(f"{path}: listed in {MANIFEST} but missing")
            if sha256(path) != expected_sum:
                raise DatasetError(f"{path}: checksum differs from {MANIFEST} (corrupted or modified)")


def _read_image(path: Path, mode: str = "RGB") -> np.ndarray:
    """Decode an image of the dataset; a damaged file (a truncated or garbled body, which the
    validator's header read does not see) raises :class:`DatasetError` naming it."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert(mode))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DatasetError(f"{path}: not a readable image ({exc})") from exc


@dataclass
class Split:
    """One split of a dataset, in memory, in talker's (ngp) conventions.

    Attributes:
        images: ``[N, H, W, 3]`` uint8 ground-truth frames (gt_imgs).
        backgrounds: ``[N, H, W, 3]`` uint8 background of the head stage: torso over bc.jpg.
        poses: ``[N, 4, 4]`` float32 ngp camera-to-world.
        intrinsics: ``[4]`` fx, fy, cx, cy.
        landmarks: ``[M, 68, 3]`` all canonical landmarks (indexed by ``aud_ids``).
        lms: ``[N, 68, 2]`` image landmarks (x, y).
        img_ids, aud_ids: ``[N]`` long.
        bc: ``[H, W, 3]`` uint8 clean background (bc.jpg), under the torso stage's learned torso.
        audio: ``[M, 16, C]`` per-frame audio feature windows (indexed by ``aud_ids``), or None when
            the dataset has no such file.
    """

    root: Path
    name: str
    images: Tensor
    backgrounds: Tensor
    poses: Tensor
    intrinsics: Tensor
    landmarks: Tensor
    lms: Tensor
    img_ids: Tensor
    aud_ids: Tensor
    bc: Tensor | None = None
    audio: Tensor | None = None

    @property
    def height(self) -> int:
        return self.images.shape[1]

    @property
    def width(self) -> int:
        return self.images.shape[2]

    def __len__(self) -> int:
        return self.images.shape[0]

    def first(self, count: int) -> Split:
        """The split's first ``count`` frames (its tracks, indexed by ``aud_ids``, are kept whole)."""
        per_frame = ("images", "backgrounds", "poses", "lms", "img_ids", "aud_ids")
        return replace(self, **{name: getattr(self, name)[:count] for name in per_frame})


def load_split(
    root: str | Path, split: str, scale: float = 4.0, offset=(0.0, 0.0, 0.0), audio_features: str | None = "aud_mel.npy"
) -> Split:
    """Read one split (``train`` / ``val``) of a validated dataset into memory.

    ``audio_features`` names the per-frame audio feature file (:data:`AUDIO_FEATURES`) that
    audio-driven strategies read; it is loaded when present (None: never)."""
    root = Path(root)
    meta = read_transforms(root, split)
    frames = meta["frames"]
    bc = _read_image(root / "bc.jpg").astype(np.float32)
    images, backgrounds, poses, lms = [], [], [], []
    for frame in frames:
        img_id = frame["img_id"]
        images.append(_read_image(root / "gt_imgs" / f"{img_id}.jpg"))
        torso = _read_image(root / "torso_imgs" / f"{img_id}.png", "RGBA").astype(np.float32)
        alpha = torso[..., 3:] / 255.0
        backgrounds.append(np.round(torso[..., :3] * alpha + bc * (1 - alpha)).astype(np.uint8))
        poses.append(nerf_to_ngp(np.asarray(frame["transform_matrix"]), scale, offset))
        lms.append(np.loadtxt(root / "ori_imgs" / f"{img_id}.lms").reshape(68, 2))
    intrinsics = [meta["focal_len"], meta["focal_len"], meta["cx"], meta["cy"]]
    return Split(
        root=root,
        name=split,
        images=torch.from_numpy(np.stack(images)),
        backgrounds=torch.from_numpy(np.stack(backgrounds)),
        poses=torch.from_numpy(np.stack(poses)).float(),
        intrinsics=torch.tensor(intrinsics, dtype=torch.float32),
        landmarks=torch.from_numpy(np.load(root / LANDMARKS_ALL)).float(),
        lms=torch.from_numpy(np.stack(lms)).float(),
        img_ids=torch.tensor([f["img_id"] for f in frames]),
        aud_ids=torch.tensor([f["aud_id"] for f in frames]),
        bc=torch.from_numpy(np.round(bc).astype(np.uint8)),
        audio=_load_audio(root, audio_features),
    )


def _load_audio(root: Path, name: str | None) -> Tensor | None:
    if name is None or not (root / name).is_file():
        return None
    if name not in AUDIO_FEATURES:
        raise DatasetError(f"{root / name}: not an audio feature file (expected one of {AUDIO_FEATURES})")
    features = np.load(root / name)
    if features.ndim != 3:
        raise DatasetError(f"{root / name}: shape {features.shape}, expected [N, 16, C] feature windows")
    return torch.from_numpy(features).float()
