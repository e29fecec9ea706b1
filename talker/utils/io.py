"""Small file helpers: atomic writes (a crash never leaves a half-written result) and images."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from talker.errors import RunFolderError

if TYPE_CHECKING:  # torch is not imported to read or write run files (the table notebooks never need it)
    import torch


def check_writable(folder: str | Path) -> None:
    """Raise :class:`RunFolderError` naming ``folder`` if files cannot be created in it (or, when it
    does not exist yet, in the nearest folder above it): a read-only or full disk, no permission."""
    folder = Path(folder).absolute()
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise RunFolderError(f"{folder}: cannot be created ({existing} is not a folder)")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        where = "" if existing == folder else f" ({existing} is where it would be created)"
        raise RunFolderError(f"{folder}: not writable: {exc.strerror or exc}{where}") from exc


def write_text_atomic(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk leaves the old file and no temporary one
        raise


def write_json(path: str | Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_csv(path: str | Path, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fields = list(dict.fromkeys(key for row in rows for key in row))
    try:
        with tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def to_uint8(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """``[H, W, C]`` float in [0, 1] -> uint8."""
    if not isinstance(image, np.ndarray):  # a torch.Tensor
        image = image.detach().cpu().float().numpy()
    return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)


def save_png(path: str | Path, image: torch.Tensor | np.ndarray) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(image)).save(path)
