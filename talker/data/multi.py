"""Several identities, one training stream: what multi-identity pre-training (LokiTalk's ID-aware
transfer, Sec. 3.3) trains on.

Each identity is a :class:`TalkingHeadDataModule` of its own (its dataset, cameras, backgrounds, tracks
and reference crops), so every ray batch and condition is built exactly as for a single person. A
training step draws one frame of one identity (frames of every identity in one seeded permutation, so
an identity is drawn in proportion to its frames) and tags the batch with ``identity`` (its position
in ``identities``). Held-out evaluation, validation and the callbacks read the first identity.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from talker.data.datamodule import Frames, RayBatches, StepLoader, TalkingHeadDataModule
from talker.data.frames import FrameConditions
from talker.data.layout import Split
from talker.data.synthetic.generator import SyntheticClip
from talker.data.synthetic.identity import IDENTITIES


class IdentityBatches:
    """The :class:`RayBatches` of several identities end to end: item ``i`` is frame ``i - start_k`` of
    identity ``k``, with ``batch["identity"] = k``."""

    def __init__(self, identities: Sequence[RayBatches]) -> None:
        if not identities:
            raise ValueError("data.identities is empty: multi-identity training needs at least one identity")
        self.identities = list(identities)
        self.starts = [0]
        for batches in self.identities:
            self.starts.append(self.starts[-1] + len(batches))

    def __len__(self) -> int:
        return self.starts[-1]

    def locate(self, index: int) -> tuple[int, int]:
        """``(identity, frame)`` of item ``index``."""
        identity = bisect.bisect_right(self.starts, index) - 1
        return identity, index - self.starts[identity]

    def sample(self, index: int, generator: torch.Generator | None = None) -> dict[str, Any]:
        identity, frame = self.locate(index)
        return {**self.identities[identity].sample(frame, generator), "identity": identity}


class MultiIdentityDataModule(L.LightningDataModule):
    """Training frames of every identity in ``identities``; evaluation on the first one's held-out frames.

    Args:
        base: factory of one identity's data module (``data.base``, a partial of ``data=synthetic``).
        identities: each a synthetic identity (a key of ``talker.data.synthetic.identity.IDENTITIES``:
            ``base``'s clip with that face and voice) or a dataset folder.
        seed: order of the frames and rays drawn at each step.
        common: further ``data`` keys given to every identity's module (``num_rays``, ``reference``, ...).
    """

    def __init__(
        self, base: Callable[..., TalkingHeadDataModule], identities: Sequence[str], seed: int = 0, **common: Any
    ) -> None:
        super().__init__()
        if not identities:
            raise ValueError("data.identities is empty: multi-identity training needs at least one identity")
        self.identities = [self._identity(base, str(name), seed, common) for name in identities]
        self.seed = seed

    @staticmethod
    def _identity(
        base: Callable[..., TalkingHeadDataModule], name: str, seed: int, common: Mapping[str, Any]
    ) -> TalkingHeadDataModule:
        if name in IDENTITIES:
            clip = getattr(base, "keywords", {}).get("synthetic") or SyntheticClip()
            return base(root=None, synthetic=replace(clip, identity=name), seed=seed, **common)
        if not Path(name).is_dir():
            raise ValueError(f"data.identities: {name!r} is neither a synthetic identity ({sorted(IDENTITIES)}) nor a dataset folder")
        return base(root=name, synthetic=None, seed=seed, **common)

    @property
    def first(self) -> TalkingHeadDataModule:
        return self.identities[0]

    # What the evaluator and callbacks read: the first identity's.
    @property
    def conditions(self) -> FrameConditions:
        return self.first.conditions

    @property
    def train_split(self) -> Split | None:
        """The first identity's training frames. The occupancy grid's frustum marking reads this, so cells
        that only another identity's cameras see would be dropped: ``None`` keeps every cell instead."""
        return None

    @property
    def val_split(self) -> Split | None:
        return self.first.val_split

    @property
    def audio_features(self) -> str | None:
        return self.first.audio_features

    def dataset_dir(self) -> Path:
        return self.first.dataset_dir()

    def prepare_data(self) -> None:
        for identity in self.identities:
            identity.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        for identity in self.identities:
            identity.setup(stage)

    def train_dataloader(self) -> StepLoader:
        return StepLoader(IdentityBatches([d.ray_batches() for d in self.identities]), self.seed)  # type: ignore[arg-type]

    def val_dataloader(self) -> DataLoader:
        return self.first.val_dataloader()

    def eval_frames(self) -> Frames:
        return self.first.eval_frames()

    def train_conditions(self) -> list[dict[str, Tensor]]:
        """The driving inputs of every training frame of every identity (normalisation statistics,
        max-over-conditions occupancy)."""
        return [c for identity in self.identities for c in identity.train_conditions()]
