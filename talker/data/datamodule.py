"""LightningDataModule over the dataset layout: per-step ray batches and whole held-out frames."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from talker.data.cameras import pixel_rays
from talker.data.frames import AUDIO_WINDOW, LANDMARK_WINDOW, FrameConditions, ReferenceMode
from talker.data.landmarks import RAY_REGIONS, blinking
from talker.data.layout import Split, load_split, validate_dataset
from talker.data.synthetic.generator import SyntheticClip
from talker.rendering.samplers import RayNoise

# Where a batch's LPIPS patch lies: ``lips`` around the mouth (R2-Talker's lip patch), ``frame``
# anywhere in the image (LokiTalk's LPIPS on the image, rendered as a patch).
PATCH_REGIONS = ("lips", "frame")


class RayBatches(Dataset):
    """Item ``i``: ``num_rays`` random pixels of training frame ``i`` (one frame per step, as the papers).

    A ``face_fraction`` of the rays is drawn inside the face box, a ``mouth_fraction`` inside
    the mouth box and an ``eyes_fraction`` inside the eye strip (all from the frame's 68 landmarks),
    the rest uniformly over the image: the background is static, while the mouth, the one region
    that follows the condition, covers about 1% of a frame and would otherwise get a few dozen rays
    per step; the lids a blink moves cover less.

    Keys: ``rays_o, rays_d, rgb, background, bc [R, 3]`` (``background``: the ground-truth torso over
    the clean background ``bc``), ``pixels [R, 2]`` (x, y), ``face, lower_face, landmark_extent, mouth, eyes, eye_strip, torso [R]`` (inside each region of
    ``talker.data.landmarks.RAY_REGIONS``),
    ``pose [4, 4]``, ``cond`` (the frame's inputs, built by ``conditions``), ``index`` (frame
    position in the split) and, with ``lip_patch > 0``,
    ``patch``: the same ray keys for a ``lip_patch`` x ``lip_patch`` square of pixels (row-major) for
    the lips stage's LPIPS, placed by ``patch_region`` (:data:`PATCH_REGIONS`).
    """

    def __init__(
        self, split: Split, num_rays: int, conditions: FrameConditions, face_fraction: float = 0.0,
        lip_patch: int = 0, mouth_fraction: float = 0.0, eyes_fraction: float = 0.0, patch_region: str = "lips",
    ) -> None:
        if patch_region not in PATCH_REGIONS:
            raise ValueError(f"data.patch_region={patch_region!r}: must be one of {', '.join(PATCH_REGIONS)}")
        shares = {"face_fraction": face_fraction, "mouth_fraction": mouth_fraction, "eyes_fraction": eyes_fraction}
        if min(shares.values()) < 0 or sum(shares.values()) > 1:
            given = " and ".join(f"data.{key}={value}" for key, value in shares.items())
            raise ValueError(f"{given} must be >= 0 and sum to <= 1")
        self.split, self.num_rays, self.conditions = split, num_rays, conditions
        self.num_face = int(round(num_rays * face_fraction))
        self.num_mouth = int(round(num_rays * mouth_fraction))
        self.num_eyes = int(round(num_rays * eyes_fraction))
        self.region_boxes = {
            name: [region(lms, split.height, split.width) for lms in split.lms] for name, region in RAY_REGIONS.items()
        }
        self.face_boxes = self.region_boxes["face"]  # where face rays are sampled
        self.mouth_boxes = self.region_boxes["mouth"]  # where mouth rays are sampled
        self.eye_boxes = self.region_boxes["eye_strip"]  # where eye rays are sampled
        self.lip_patch = min(lip_patch, split.height, split.width)
        self.patch_region = patch_region

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.sample(index)

    def blinks(self) -> Tensor:
        """``[N]`` bool: which frames blink (:func:`talker.data.landmarks.blinking`)."""
        return blinking(self.split.lms)

    def sample(self, index: int, generator: torch.Generator | None = None) -> dict[str, Any]:
        s = self.split
        face = _pixels_in(self.face_boxes[index], self.num_face, generator)
        mouth = _pixels_in(self.mouth_boxes[index], self.num_mouth, generator)
        # Drawn only when asked for, so that runs without eye rays draw the rays they always drew.
        eyes = _pixels_in(self.eye_boxes[index], self.num_eyes, generator) if self.num_eyes else mouth[:0]
        num_anywhere = self.num_rays - self.num_face - self.num_mouth - self.num_eyes
        anywhere = torch.randint(0, s.height * s.width, (num_anywhere,), generator=generator)
        pixels = torch.cat([face, mouth, eyes, torch.stack([anywhere % s.width, anywhere // s.width], dim=-1)])
        batch = {
            **self.rays(index, pixels),
            "pose": s.poses[index],
            "size": torch.tensor([s.width, s.height]),
            "cond": self.conditions.of_split(s, index),
            "index": index,
        }
        if self.lip_patch > 0:
            corner = self.lip_corner if self.patch_region == "lips" else self.frame_corner
            batch["patch"] = self.rays(index, self.patch_pixels(*corner(index, generator)))
        return batch

    def rays(self, index: int, pixels: Tensor) -> dict[str, Tensor]:
        """Rays and ground truth of frame ``index`` through ``pixels [R, 2]`` (x, y)."""
        s = self.split
        flat = pixels[:, 1] * s.width + pixels[:, 0]
        rays_o, rays_d = pixel_rays(s.poses[index], s.intrinsics, pixels)
        out = {
            "rays_o": rays_o,
            "rays_d": rays_d,
            "rgb": s.images[index].view(-1, 3)[flat].float() / 255.0,
            "background": s.backgrounds[index].view(-1, 3)[flat].float() / 255.0,
            "pixels": pixels,
            # Region flags (talker.data.landmarks.RAY_REGIONS): face, lower_face, landmark_extent, mouth, eyes, eye_strip, torso.
            **{name: _inside(boxes[index], pixels) for name, boxes in self.region_boxes.items()},
        }
        if s.bc is not None:
            out["bc"] = s.bc.view(-1, 3)[flat].float() / 255.0
        return out

    def lip_corner(self, index: int, generator: torch.Generator | None = None) -> tuple[int, int]:
        """``(x0, y0)`` of a ``lip_patch``-sided square around the mouth landmarks (48-67), shifted by up
        to a quarter of its side so that the patch does not always frame the lips the same way."""
        s, size = self.split, self.lip_patch
        centre = s.lms[index, 48:68].mean(0)
        jitter = (torch.rand(2, generator=generator) - 0.5) * (size / 2)
        x0 = int((centre[0] + jitter[0]).round()) - size // 2
        y0 = int((centre[1] + jitter[1]).round()) - size // 2
        return min(max(x0, 0), s.width - size), min(max(y0, 0), s.height - size)

    def frame_corner(self, index: int, generator: torch.Generator | None = None) -> tuple[int, int]:
        """``(x0, y0)`` of a ``lip_patch``-sided square anywhere in the frame, uniformly."""
        s, size = self.split, self.lip_patch
        x0, y0 = (int(torch.randint(0, side - size + 1, (1,), generator=generator)) for side in (s.width, s.height))
        return x0, y0

    def patch_pixels(self, x0: int, y0: int) -> Tensor:
        """``[P * P, 2]`` (x, y), row-major: the ``lip_patch``-sided square from ``(x0, y0)``."""
        size = self.lip_patch
        ys, xs = torch.meshgrid(torch.arange(y0, y0 + size), torch.arange(x0, x0 + size), indexing="ij")
        return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=-1)


def _pixels_in(box: tuple[int, int, int, int], count: int, generator: torch.Generator | None) -> Tensor:
    """``[count, 2]`` (x, y) pixels drawn uniformly inside ``box = (y0, y1, x0, x1)``."""
    y0, y1, x0, x1 = box
    xs = torch.randint(x0, x1, (count,), generator=generator)
    ys = torch.randint(y0, y1, (count,), generator=generator)
    return torch.stack([xs, ys], dim=-1)


def _inside(box: tuple[int, int, int, int], pixels: Tensor) -> Tensor:
    """``[R]`` whether each (x, y) pixel lies inside ``box = (y0, y1, x0, x1)``."""
    y0, y1, x0, x1 = box
    return (pixels[:, 0] >= x0) & (pixels[:, 0] < x1) & (pixels[:, 1] >= y0) & (pixels[:, 1] < y1)


# Per-ray entries of RayBatches.rays.
RAY_KEYS = ("rays_o", "rays_d", "rgb", "background", "pixels", *RAY_REGIONS, "bc")


def shard_rays(batch: dict[str, Any], rank: int, world: int) -> dict[str, Any]:
    """This rank's rays ``[rank::world]`` of a ray batch; ``ray_noise`` then draws the jitter of
    exactly those rays of the whole batch. Frame-level entries (``cond``, ``index``, ``pose``) are
    shared, and so is the lip ``patch``: LPIPS needs the whole patch, so every rank renders it and
    the averaged gradient is the single process's."""
    total = batch["rays_o"].shape[0]
    if total % world:
        raise ValueError(f"data.num_rays={total} must be a multiple of the number of processes ({world})")
    shard = {**batch, **{key: batch[key][rank::world] for key in RAY_KEYS if key in batch}}
    shard["ray_noise"] = RayNoise(seed=batch["noise_seed"], total=total, rank=rank, world=world)
    del shard["noise_seed"]
    return shard


class StepLoader:
    """The training loader: one :class:`RayBatches` item per step, reproducible and resumable.

    Epoch ``e`` visits the frames in a permutation seeded by ``(seed, e)``; the rays of its
    ``k``-th batch (and their jitter, ``ray_noise``) are seeded by ``(seed, e, k)``. The loader's state (epoch, position) goes into
    Lightning checkpoints, so a resumed run draws exactly the batches an uninterrupted run would.
    Under DDP every rank draws the same batch and keeps its share of the rays (``[rank::world]``,
    see :func:`shard_rays`), so the ranks together train on exactly the batch one process would.

    ``blink_share > 0`` draws each epoch's frames with replacement instead, so that that share of the
    steps falls on blinking frames (:meth:`RayBatches.blinks`): a clip blinks in a few percent of its
    frames, and a head that sees a blink a dozen times learns open eyes only.
    """

    def __init__(self, batches: RayBatches, seed: int = 0, blink_share: float = 0.0) -> None:
        if not 0 <= blink_share < 1:
            raise ValueError(f"data.blink_share={blink_share} must be in [0, 1)")
        self.batches, self.seed, self.blink_share = batches, seed, blink_share
        self.epoch, self.position = 0, 0

    def frame_order(self, generator: torch.Generator) -> list[int]:
        """This epoch's frames, step by step: a permutation, or with ``blink_share`` frames drawn with
        replacement (a permutation still when every frame, or none, blinks)."""
        count = len(self.batches)
        blinks = self.batches.blinks() if self.blink_share else None
        if blinks is None or bool(blinks.all()) or not bool(blinks.any()):
            return torch.randperm(count, generator=generator).tolist()
        weights = torch.where(blinks, self.blink_share / blinks.sum(), (1 - self.blink_share) / (~blinks).sum())
        return torch.multinomial(weights, count, replacement=True, generator=generator).tolist()

    def _rank(self) -> tuple[int, int]:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rank, world = self._rank()
        frames = self.frame_order(torch.Generator().manual_seed(self.seed * 100_003 + self.epoch))
        while self.position < len(frames):
            position = self.position
            self.position += 1
            generator = torch.Generator().manual_seed((self.seed * 100_003 + self.epoch) * 1_000_003 + position)
            batch = self.batches.sample(frames[position], generator)
            batch["noise_seed"] = int(torch.randint(2**62, (1,), generator=generator))
            yield shard_rays(batch, rank, world)
        self.epoch, self.position = self.epoch + 1, 0

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])


class Frames(Dataset):
    """Item ``i``: every ray of frame ``i``, its ground truth and landmarks (for evaluation)."""

    def __init__(self, split: Split, conditions: FrameConditions) -> None:
        self.split, self.conditions = split, conditions
        ys, xs = torch.meshgrid(torch.arange(split.height), torch.arange(split.width), indexing="ij")
        self.pixels = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=-1)

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> dict[str, Any]:
        s = self.split
        rays_o, rays_d = pixel_rays(s.poses[index], s.intrinsics, self.pixels)
        return {
            "rays_o": rays_o,
            "rays_d": rays_d,
            "image": s.images[index].float() / 255.0,  # [H, W, 3]
            "background": s.backgrounds[index].view(-1, 3).float() / 255.0,
            **({"bc": s.bc.view(-1, 3).float() / 255.0} if s.bc is not None else {}),
            "pixels": self.pixels,
            "pose": s.poses[index],
            "cond": self.conditions.of_split(s, index),
            "lms": s.lms[index],
            "index": index,
            "img_id": int(s.img_ids[index]),
        }


class TalkingHeadDataModule(L.LightningDataModule):
    """Reads a dataset folder, or generates the synthetic clip first when ``root`` is None.

    Args:
        root: dataset folder in the layout of ``talker.data.layout``; None uses ``synthetic``.
        synthetic: generator parameters used when ``root`` is None.
        cache_dir: where generated datasets are kept.
        num_rays: rays per training step.
        face_fraction: share of each step's rays drawn inside the face box.
        mouth_fraction: share of each step's rays drawn inside the mouth box (on top of the face's).
        eyes_fraction: share of each step's rays drawn inside the eye strip (``eye_strip``: the lids).
        blink_share: share of the steps that train on a blinking frame (:class:`StepLoader`); 0: each
            epoch visits every frame once.
        landmark_window: frames of landmarks per condition (R2-Talker: 5).
        audio_window: frames of audio feature windows per condition (RAD-NeRF: 8).
        scale, offset: NeRF-json to ngp conversion (RAD-NeRF defaults: 4, [0, 0, 0]).
        val_frames: held-out frames rendered by the periodic validation loop (evaluation renders all).
        lip_patch: side in pixels of the square that every training batch also carries (the lips stage
            renders it for LPIPS); 0: none.
        patch_region: where that square lies (:data:`PATCH_REGIONS`): ``lips`` around the mouth
            (R2-Talker's lip patch), ``frame`` anywhere in the image (LokiTalk's LPIPS on the image).
        audio_features: per-frame audio feature file read by audio-driven strategies (``aud_mel.npy``,
            ``aud_ds.npy``, ``aud_hu.npy``, ...; loaded when the dataset has it).
        zero_condition: feed all-zero conditions (training and evaluation alike): the control arm
            that measures how much the driving signal carries (benchmarks/condition_matters.py).
        reference: give every frame the ``reference`` input (a face crop of the identity's training
            frames: ``first``, or ``random`` at each call; ``talker.data.frames.ReferenceFrame``) for
            strategies with an ID encoder; None: no such input.
        train_fraction: train on the first ``ceil(train_fraction * N)`` of the ``N`` training frames
            (less video of a person; the held-out frames are unchanged).
    """

    def __init__(
        self,
        root: str | None = None,
        synthetic: SyntheticClip | None = None,
        cache_dir: str = "data",
        num_rays: int = 4096,
        face_fraction: float = 0.5,
        mouth_fraction: float = 0.0,
        landmark_window: int = LANDMARK_WINDOW,
        audio_window: int = AUDIO_WINDOW,
        scale: float = 4.0,
        offset: tuple[float, float, float] = (0.0, 0.0, 0.0),
        val_frames: int = 2,
        seed: int = 0,
        zero_condition: bool = False,
        audio_features: str | None = "aud_mel.npy",
        lip_patch: int = 32,
        reference: ReferenceMode | None = None,
        train_fraction: float = 1.0,
        eyes_fraction: float = 0.0,
        blink_share: float = 0.0,
        patch_region: str = "lips",
    ) -> None:
        super().__init__()
        if not 0 < train_fraction <= 1:
            raise ValueError(f"data.train_fraction={train_fraction} must be in (0, 1]")
        if root is None and synthetic is None:
            raise ValueError("data.root is not set: give a dataset folder (data.root=<dir>) or use data=synthetic")
        self.root = Path(root) if root is not None else None
        self.synthetic = synthetic
        self.cache_dir = Path(cache_dir)
        self.num_rays = num_rays
        self.face_fraction, self.mouth_fraction, self.eyes_fraction = face_fraction, mouth_fraction, eyes_fraction
        self.blink_share = blink_share
        self.landmark_window = landmark_window
        # What every frame's condition is made of (training, evaluation, occupancy, projector, speed).
        self.conditions = FrameConditions(landmark_window, audio_window, zero_condition, reference or "first")
        self.reference, self.train_fraction = reference, train_fraction
        self.scale, self.offset = scale, tuple(offset)
        self.val_frames = val_frames
        self.seed = seed
        self.zero_condition = zero_condition
        self.audio_features = audio_features
        self.lip_patch, self.patch_region = lip_patch, patch_region
        self.train_split: Split | None = None
        self.val_split: Split | None = None

    def dataset_dir(self) -> Path:
        if self.root is not None:
            return self.root
        assert self.synthetic is not None
        return self.synthetic.dataset_dir(self.cache_dir)

    def prepare_data(self) -> None:
        """Runs on one process per node: generate the synthetic clip if needed, then validate."""
        if self.root is None:
            assert self.synthetic is not None
            self.synthetic.ensure(self.cache_dir)
        validate_dataset(self.dataset_dir())

    def setup(self, stage: str | None = None) -> None:
        if self.train_split is None:
            root = self.dataset_dir()
            train = load_split(root, "train", self.scale, self.offset, self.audio_features)
            self.train_split = train.first(math.ceil(self.train_fraction * len(train)))
            self.val_split = load_split(root, "val", self.scale, self.offset, self.audio_features)
            if self.reference is not None:
                self.conditions.use_references(self.train_split)

    def ray_batches(self) -> RayBatches:
        """A training step's rays of any training frame."""
        return RayBatches(
            self.train_split, self.num_rays, self.conditions, self.face_fraction, self.lip_patch, self.mouth_fraction,
            self.eyes_fraction, self.patch_region,
        )

    def train_dataloader(self) -> StepLoader:
        return StepLoader(self.ray_batches(), self.seed, self.blink_share)

    def val_dataloader(self) -> DataLoader:
        frames = Frames(self.val_split, self.conditions)
        subset = torch.utils.data.Subset(frames, range(min(self.val_frames, len(frames))))
        return DataLoader(subset, batch_size=None)

    def eval_frames(self) -> Frames:
        """Every held-out frame, for the evaluation callback."""
        return Frames(self.val_split, self.conditions)

    def train_conditions(self) -> list[dict[str, Tensor]]:
        """The driving inputs of every training frame (for max-over-conditions occupancy)."""
        return [self.conditions.of_split(self.train_split, i) for i in range(len(self.train_split))]
