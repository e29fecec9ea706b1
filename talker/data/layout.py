"""The on-disk dataset layout shared with AD-NeRF, RAD-NeRF, ER-NeRF and R2-Talker's public code.

::

    <root>/
      transforms_train.json, transforms_val.json   focal_len, cx, cy, (h, w), frames[{img_id, aud_id,
                                                    transform_matrix (NeRF camera-to-world)}]
      gt_imgs/<img_id>.jpg        frames over the clean background
      ori_imgs/<img_id>.jpg       raw frames; ori_imgs/<img_id>.lms: [68, 2] image landmarks (x, y),
                                  pixel centres at integer coordinates
      torso_imgs/<img_id>.png     RGBA neck + torso (head and background transparent)
      parsing/<img_id>.png        head (0,0,255) / neck (0,255,0) / torso (255,0,0) / bg (255,255,255)
      bc.jpg                      clean background
      aud.wav                     16 kHz mono audio
      aud_idexp.npy               [N, 68, 3] canonical (pose-free) landmarks, indexed by aud_id
      aud_idexp_train.npy / aud_idexp_val.npy   the same, per split
      manifest.json               talker's addition: generator/preprocessor, parameters, checksums

talker's own additions live in extra files; existing files keep their meaning so that processed
datasets of the reference codebases load unchanged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from talker.data.cameras import nerf_to_ngp

SPLITS = ("train", "val")
MANIFEST = "manifest.json"
LANDMARKS_ALL = "aud_idexp.npy"


class DatasetError(ValueError):
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


def validate_dataset(root: str | Path, check_checksums: bool = True) -> None:
    """Raise :class:`DatasetError` naming the first problem found, or return if the dataset is usable.

    Checks: transforms files and their keys, every referenced image / landmark file, frame size
    agreement, the landmark array's shape, length (covers every aud_id) and finiteness, and, when a
    manifest is present, every file checksum it lists.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder does not exist")
    landmarks_path = root / LANDMARKS_ALL
    if not landmarks_path.is_file():
        raise DatasetError(f"{landmarks_path}: missing ([N, 68, 3] canonical landmarks)")
    landmarks = np.load(landmarks_path, mmap_mode="r")
    if landmarks.ndim != 3 or landmarks.shape[1:] != (68, 3):
        raise DatasetError(f"{landmarks_path}: shape {landmarks.shape}, expected [N, 68, 3]")
    if not np.isfinite(landmarks).all():
        raise DatasetError(f"{landmarks_path}: contains NaN or infinite values")
    if not (root / "bc.jpg").is_file():
        raise DatasetError(f"{root / 'bc.jpg'}: missing (clean background image)")
    size = Image.open(root / "bc.jpg").size
    for split in SPLITS:
        meta = read_transforms(root, split)
        for frame in meta["frames"]:
            img_id = frame["img_id"]
            for path in (
                root / "gt_imgs" / f"{img_id}.jpg",
                root / "torso_imgs" / f"{img_id}.png",
                root / "ori_imgs" / f"{img_id}.lms",
            ):
                if not path.is_file():
                    raise DatasetError(f"{path}: missing (frame {img_id} of transforms_{split}.json)")
            if frame["aud_id"] >= landmarks.shape[0]:
                raise DatasetError(
                    f"{landmarks_path}: {landmarks.shape[0]} frames, but transforms_{split}.json "
                    f"refers to aud_id {frame['aud_id']}"
                )
            matrix = np.asarray(frame["transform_matrix"], dtype=np.float64)
            if matrix.shape != (4, 4) or not np.isfinite(matrix).all():
                raise DatasetError(f"{transforms_path(root, split)}: frame {img_id} transform_matrix is not a finite 4x4")
        first = root / "gt_imgs" / f"{meta['frames'][0]['img_id']}.jpg"
        if Image.open(first).size != size:
            raise DatasetError(f"{first}: size {Image.open(first).size} differs from bc.jpg {size}")
    manifest_path = root / MANIFEST
    if check_checksums and manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        for rel, expected in manifest.get("files", {}).items():
            path = root / rel
            if not path.is_file():
                raise DatasetError(f"{path}: listed in {MANIFEST} but missing")
            if sha256(path) != expected:
                raise DatasetError(f"{path}: checksum differs from {MANIFEST} (corrupted or modified)")


def _read_rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


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

    @property
    def height(self) -> int:
        return self.images.shape[1]

    @property
    def width(self) -> int:
        return self.images.shape[2]

    def __len__(self) -> int:
        return self.images.shape[0]

    def landmark_window(self, index: int, window: int) -> Tensor:
        """``[window, 68, 3]`` landmarks centred on frame ``index`` (clamped at the clip ends)."""
        centre = int(self.aud_ids[index])
        ids = (torch.arange(window) - window // 2 + centre).clamp(0, self.landmarks.shape[0] - 1)
        return self.landmarks[ids]


def load_split(root: str | Path, split: str, scale: float = 4.0, offset=(0.0, 0.0, 0.0)) -> Split:
    """Read one split (``train`` / ``val``) of a validated dataset into memory."""
    root = Path(root)
    meta = read_transforms(root, split)
    frames = meta["frames"]
    bc = _read_rgb(root / "bc.jpg").astype(np.float32)
    images, backgrounds, poses, lms = [], [], [], []
    for frame in frames:
        img_id = frame["img_id"]
        images.append(_read_rgb(root / "gt_imgs" / f"{img_id}.jpg"))
        torso = np.asarray(Image.open(root / "torso_imgs" / f"{img_id}.png").convert("RGBA")).astype(np.float32)
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
    )
