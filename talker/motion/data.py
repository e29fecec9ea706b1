"""(audio, landmark) sequences of a dataset for the motion generator: random crops to train on, the
held-out split as one sequence.

Landmarks are the dataset's canonical ``aud_idexp.npy`` ``[N, 68, 3]``; audio rows come from the
features file of the configured extractor (``aud_mel.npy`` for :class:`~talker.audio.LogMel`,
``aud_hu.npy`` for HuBERT, ...), computed from ``aud.wav`` in memory when the dataset has none.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from talker.audio import AudioFeatures, LogMel, load_audio
from talker.data.layout import LANDMARKS_ALL, DatasetError, read_transforms, validate_dataset
from talker.data.synthetic.generator import SyntheticClip
from talker.motion.processing import frame_rows


def contiguous_runs(ids: np.ndarray) -> list[np.ndarray]:
    """Sorted frame ids -> runs of consecutive ids (a split may hold several stretches of a video)."""
    ids = np.sort(np.asarray(ids))
    cuts = np.nonzero(np.diff(ids) != 1)[0] + 1
    return [run for run in np.split(ids, cuts) if run.size]


class Crops(Dataset):
    """``length`` random crops of ``frames`` frames from the sequences (one crop per item)."""

    def __init__(self, sequences: list[tuple[Tensor, Tensor]], frames: int, length: int) -> None:
        usable = [s for s in sequences if s[0].shape[0] >= frames]
        if not usable:
            longest = max(s[0].shape[0] for s in sequences)
            raise DatasetError(f"no training stretch has data.sequence_frames={frames} frames (the longest has {longest})")
        self.sequences, self.frames, self.length = usable, frames, length
        sizes = torch.tensor([s[0].shape[0] - frames + 1 for s in usable], dtype=torch.float64)
        self.weights = sizes / sizes.sum()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        which = int(torch.multinomial(self.weights, 1))
        landmarks, audio = self.sequences[which]
        start = int(torch.randint(0, landmarks.shape[0] - self.frames + 1, ()))
        window = slice(start, start + self.frames)
        return {"landmarks": landmarks[window], "audio": audio[window], "mask": torch.ones(self.frames)}


class MotionDataModule(L.LightningDataModule):
    """Args:
    root: dataset folder (the shared layout); None generates ``synthetic`` under ``cache_dir``.
    features: the audio extractor whose windows the generator reads (default: log-mel).
    sequence_frames: frames per training crop.
    batch_size: crops per step.
    crops_per_epoch: items of one training epoch.
    """

    def __init__(
        self,
        root: str | None = None,
        synthetic: SyntheticClip | None = None,
        cache_dir: str = "data",
        features: AudioFeatures | None = None,
        sequence_frames: int = 64,
        batch_size: int = 16,
        crops_per_epoch: int = 1024,
    ) -> None:
        super().__init__()
        if root is None and synthetic is None:
            raise ValueError("data.root is not set: give a dataset folder (data.root=<dir>) or use the synthetic clip")
        self.root = Path(root) if root is not None else None
        self.synthetic, self.cache_dir = synthetic, Path(cache_dir)
        self.features = features if features is not None else LogMel()
        self.sequence_frames, self.batch_size, self.crops_per_epoch = sequence_frames, batch_size, crops_per_epoch
        self.splits: dict[str, list[tuple[Tensor, Tensor]]] | None = None

    def dataset_dir(self) -> Path:
        return self.root if self.root is not None else self.synthetic.dataset_dir(self.cache_dir)

    def prepare_data(self) -> None:
        if self.root is None:
            self.synthetic.ensure(self.cache_dir)
        validate_dataset(self.dataset_dir(), check_checksums=False)

    def audio_rows(self) -> Tensor:
        """``[N, 2C]`` per-frame audio rows of the whole clip (from the features file, else from aud.wav)."""
        root = self.dataset_dir()
        path = root / self.features.file_name
        if path.is_file():
            return frame_rows(np.load(path))
        wav = root / "aud.wav"
        if not wav.is_file():
            raise DatasetError(f"{path}: missing, and no {wav} to compute it from")
        rank_zero_info(f"[talker] {path.name} not in the dataset: computing it from {wav}")
        num_frames = np.load(root / LANDMARKS_ALL, mmap_mode="r").shape[0]
        return frame_rows(self.features.frame_windows(load_audio(wav), num_frames=num_frames))

    def setup(self, stage: str | None = None) -> None:
        if self.splits is not None:
            return
        root = self.dataset_dir()
        landmarks = torch.from_numpy(np.load(root / LANDMARKS_ALL)).float()
        audio = self.audio_rows()
        if audio.shape[0] < landmarks.shape[0]:
            raise DatasetError(
                f"{root / self.features.file_name}: {audio.shape[0]} frames, {LANDMARKS_ALL} has {landmarks.shape[0]}"
            )
        self.splits = {}
        for split in ("train", "val"):
            ids = np.array([f["aud_id"] for f in read_transforms(root, split)["frames"]])
            self.splits[split] = [(landmarks[run], audio[run]) for run in contiguous_runs(ids)]

    @property
    def audio_dim(self) -> int:
        self.setup()
        return int(self.splits["train"][0][1].shape[-1])

    def train_sequences(self) -> list[tuple[Tensor, Tensor]]:
        self.setup()
        return self.splits["train"]

    def val_sequences(self) -> list[tuple[Tensor, Tensor]]:
        self.setup()
        return self.splits["val"]

    def train_dataloader(self) -> DataLoader:
        crops = Crops(self.train_sequences(), self.sequence_frames, self.crops_per_epoch)
        return DataLoader(crops, batch_size=self.batch_size, shuffle=False, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        items = [{"landmarks": lm, "audio": a, "mask": torch.ones(lm.shape[0])} for lm, a in self.val_sequences()]
        return DataLoader(items, batch_size=1)
