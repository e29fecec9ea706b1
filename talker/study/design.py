"""A study on disk: its clips behind blind ids, its criteria, and each rater's balanced order.

``<study>/study.json`` (written by ``python -m talker.study create``, read by ``serve`` and
``results``; never served to a rater)::

    {"version": 1, "title": ..., "seed": 0, "seconds": 8.0,
     "criteria": [{"key": "lip_sync", "label": "Lip-sync Accuracy", "question": ...}, ...],
     "methods": ["er_nerf", "r2talker", ...], "clips": ["cross_gender", ...],
     "items": [{"id": "3f9c...", "kind": "method", "method": "r2talker", "clip": "cross_gender",
                "file": "media/3f9c....mp4", "source": "<where the video came from>"},
               {"id": ..., "kind": "ground_truth" | "broken", ...}],
     "attention": {"ground_truth": {"min": 3.0}, "broken": {"max": 2.0}}}

Every rater rates every item. The order of a rater is built so that, over any block of raters as
large as the Williams square of the methods (M raters for an even number of methods M, 2M for an
odd one), every method is shown equally often at every position among the method clips, and (for
even M) directly after every other method equally often. Clips are assigned to positions by a
Latin rotation and shuffled per rater; attention checks go in at positions drawn per rater
(never first), which do not count as positions of the method clips.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

STUDY_FILE = "study.json"
MEDIA_DIR = "media"
VERSION = 1
BLIND_ID = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class Criterion:
    """One rating scale (1-5) of every clip."""

    key: str
    label: str
    question: str


# R2-Talker's Table 3: three criteria, rated 1-5 (MOS protocol).
TABLE3_CRITERIA = (
    Criterion("lip_sync", "Lip-sync Accuracy", "How well do the lip movements match the speech?"),
    Criterion("image_quality", "Image Quality", "How sharp and free of artefacts is the image?"),
    Criterion("video_realness", "Video Realness", "How much does this look like a real recorded video?"),
)
CRITERIA = {c.key: c for c in TABLE3_CRITERIA}
SCORES = (1, 2, 3, 4, 5)
KINDS = ("method", "ground_truth", "broken")


class StudyError(ValueError):
    """A study folder or request cannot be used; the message names the file or key."""


@dataclass(frozen=True)
class Item:
    """A clip shown to raters. ``kind``: a method's clip, or an attention check (ground truth / broken)."""

    id: str
    kind: str
    clip: str
    file: str
    method: str | None = None
    source: str = ""


@dataclass
class Study:
    root: Path
    title: str
    criteria: tuple[Criterion, ...]
    items: tuple[Item, ...]
    seed: int = 0
    seconds: float | None = None
    attention: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def methods(self) -> list[str]:
        return sorted({i.method for i in self.items if i.kind == "method"})

    @property
    def clips(self) -> list[str]:
        return sorted({i.clip for i in self.items if i.kind == "method"})

    @property
    def criterion_keys(self) -> list[str]:
        return [c.key for c in self.criteria]

    def item(self, blind_id: str) -> Item | None:
        return self._by_id().get(blind_id)

    def _by_id(self) -> dict[str, Item]:
        return {i.id: i for i in self.items}

    def media_path(self, item: Item) -> Path:
        return self.root / item.file

    def order(self, rater_number: int) -> list[str]:
        """Blind ids in the order rater ``rater_number`` (0, 1, ... in order of arrival) sees them."""
        return balanced_order(self, rater_number)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "title": self.title,
            "seed": self.seed,
            "seconds": self.seconds,
            "criteria": [asdict(c) for c in self.criteria],
            "methods": self.methods,
            "clips": self.clips,
            "items": [asdict(i) for i in self.items],
            "attention": self.attention,
        }


def load_study(root: str | Path) -> Study:
    """Read ``<root>/study.json``; a missing or inconsistent file fails in one line naming it."""
    root = Path(root)
    path = root / STUDY_FILE
    if not path.is_file():
        raise StudyError(f"{path}: missing; build a study with `python -m talker.study create`")
    try:
        raw = json.loads(path.read_text())
        criteria = tuple(Criterion(str(c["key"]), str(c["label"]), str(c["question"])) for c in raw["criteria"])
        items = tuple(
            Item(str(i["id"]), str(i["kind"]), str(i["clip"]), str(i["file"]), i.get("method"), str(i.get("source", "")))
            for i in raw["items"]
        )
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise StudyError(f"{path}: not a talker study ({exc.__class__.__name__}: {exc})") from exc
    study = Study(root, str(raw.get("title", "")), criteria, items, int(raw.get("seed", 0)), raw.get("seconds"), dict(raw.get("attention") or {}))
    check_study(study, path)
    return study


def check_study(study: Study, where: Path) -> None:
    if not study.criteria:
        raise StudyError(f"{where}: no criteria")
    ids = [i.id for i in study.items]
    if len(set(ids)) != len(ids):
        raise StudyError(f"{where}: duplicate clip ids")
    for item in study.items:
        if not BLIND_ID.fullmatch(item.id):
            raise StudyError(f"{where}: clip id {item.id!r} is not a blind id (16 hex digits)")
        if item.kind not in KINDS:
            raise StudyError(f"{where}: clip {item.id}: kind {item.kind!r} is not one of {', '.join(KINDS)}")
        if (item.kind == "method") != (item.method is not None):
            raise StudyError(f"{where}: clip {item.id}: a method clip names its method, an attention check none")
    if not study.methods:
        raise StudyError(f"{where}: no method clips")
    pairs = {(i.method, i.clip) for i in study.items if i.kind == "method"}
    if len(pairs) != len(study.methods) * len(study.clips):
        missing = sorted({(m, c) for m in study.methods for c in study.clips} - pairs)
        raise StudyError(f"{where}: every method needs a clip of every setting; missing {missing[:3]}")


def williams_square(n: int) -> list[list[int]]:
    """Rows of a Williams design for ``n`` treatments: each row a sequence of 0..n-1; the rows form
    Latin squares (every treatment once per column), and every ordered pair is adjacent equally
    often (n rows for even n; for odd n the n cyclic rows and their reverses, 2n rows)."""
    first, low, high = [0], 1, n - 1
    while len(first) < n:
        first.append(low)
        low += 1
        if len(first) < n:
            first.append(high)
            high -= 1
    rows = [[(x + r) % n for x in first] for r in range(n)]
    return rows if n % 2 == 0 else rows + [row[::-1] for row in rows]


def balanced_order(study: Study, rater: int) -> list[str]:
    """See the module docstring. Deterministic in (study seed, rater number)."""
    methods, clips = study.methods, study.clips
    by_pair = {(i.method, i.clip): i.id for i in study.items if i.kind == "method"}
    square = williams_square(len(methods))
    rng = np.random.default_rng([study.seed, rater])
    clip_order = [clips[k] for k in rng.permutation(len(clips))]
    sequence = []
    for round_ in range(len(clips)):
        row = square[(rater + round_) % len(square)]
        for m in row:
            sequence.append(by_pair[(methods[m], clip_order[(round_ + m) % len(clips)])])
    for check in [i.id for i in study.items if i.kind != "method"]:
        sequence.insert(int(rng.integers(1, len(sequence) + 1)), check)
    return sequence
