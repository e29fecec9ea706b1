"""Checkpoints read safely and written atomically.

Reading (:func:`load_checkpoint`): ``torch.load(weights_only=True)``, so a checkpoint holds tensors,
numbers, strings and containers only, and a file received from someone else cannot run code while
it loads (a pickle that asks for a function is refused). talker's own checkpoints (every stage,
EMA included) need nothing more. Every failure is a :class:`CheckpointError` naming the file.

Writing (:func:`save_checkpoint`): serialised in memory, written to ``.<name>.tmp-<pid>`` in the
destination folder, fsync, read back, then renamed over the old file (a rename within one file
system is atomic; Lightning's own writer moves a temporary file from elsewhere, which across file
systems is a copy that a full disk truncates).
The old file stays whole until the new one is in place and is kept as ``<stem>-previous<suffix>``
(a hard link: no extra space until the next write). A full disk or a kill leaves the old
checkpoint as it was; a failed write removes its temporary file, and :func:`resume_checkpoint`
removes those of a killed process.

Starting (:func:`resume_checkpoint`): a relaunched run continues from ``last.ckpt`` if it loads;
if not, it is moved aside (``last.ckpt.corrupt-<time>``) and the run continues from the newest
checkpoint of the folder that loads, saying so in one line.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from talker.errors import TalkerError

TEMPORARY = ".{name}.tmp-{pid}"
PREVIOUS = "{stem}-previous{suffix}"
CORRUPT = "{name}.corrupt-{stamp}"


class CheckpointError(TalkerError, ValueError):
    """A checkpoint is missing, damaged, refused or cannot be written; the message names the file."""


def load_checkpoint(
    path: str | Path, map_location: Any = "cpu", keys: Sequence[str] = ("state_dict",), mmap: bool = False
) -> dict[str, Any]:
    """The dict stored in checkpoint ``path``, loaded with ``weights_only=True``.

    ``keys`` must be present (talker's callers need ``state_dict``). ``mmap`` maps tensors instead of
    reading them (a cheap check that the file loads)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint missing")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc)) or re.search(r"global[s]? [`'\"]?([\w.]+)", str(exc))
        what = found.group(1) if found else "a function or class"
        raise CheckpointError(
            f"{path}: refused: loading it would call {what}, which a checkpoint of weights never needs "
            f"(talker loads checkpoints with weights_only=True)"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, UnicodeDecodeError, AttributeError) as exc:
        if isinstance(exc, OSError) and exc.filename is not None:
            raise
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"{path}: not a complete checkpoint (truncated or damaged: {reason})") from exc
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path}: not a checkpoint (holds a {type(checkpoint).__name__}, not a dict)")
    missing = [key for key in keys if key not in checkpoint]
    if missing:
        raise CheckpointError(f"{path}: not a talker checkpoint (no {', '.join(missing)})")
    return checkpoint


def previous_path(path: str | Path) -> Path:
    """Where the checkpoint that ``path`` replaced is kept (``last.ckpt`` -> ``last-previous.ckpt``)."""
    path = Path(path)
    return path.with_name(PREVIOUS.format(stem=path.stem, suffix=path.suffix))


def save_checkpoint(checkpoint: dict[str, Any], path: str | Path) -> None:
    """Write ``checkpoint`` to ``path`` atomically (see the module docstring); a failure raises
    :class:`CheckpointError` naming the file and leaves the old checkpoint in place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(TEMPORARY.format(name=path.name, pid=os.getpid()))
    try:
        # Serialised in memory first (as Lightning does): a failed write is then the OSError that says
        # why (ENOSPC, EROFS), not torch's stream-writer error about file positions.
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        with open(tmp, "wb") as fh:
            fh.write(buffer.getbuffer())
            fh.flush()
            os.fsync(fh.fileno())
        del buffer
        load_checkpoint(tmp, keys=(), mmap=True)  # read back before it replaces anything
        if path.is_file():
            _keep_previous(path)
        os.replace(tmp, path)
    except (OSError, RuntimeError, CheckpointError) as exc:
        tmp.unlink(missing_ok=True)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).strip().splitlines()[0]
        kept = f"; {path.name} still holds the previous checkpoint" if path.is_file() else ""
        raise CheckpointError(f"{path}: not written ({reason}){kept}") from exc
    _sync_folder(path.parent)


def _keep_previous(path: Path) -> None:
    """Hard-link the current checkpoint as its previous one (skipped where links are not supported)."""
    previous = previous_path(path)
    link = previous.with_name(TEMPORARY.format(name=previous.name, pid=os.getpid()))
    try:
        link.unlink(missing_ok=True)
        os.link(path, link)
        os.replace(link, previous)
    except OSError:
        link.unlink(missing_ok=True)


def _sync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_checkpoint(path: str | Path) -> None:
    """Delete a checkpoint and the previous one kept next to it."""
    for file in (Path(path), previous_path(path)):
        file.unlink(missing_ok=True)


def resume_checkpoint(
    last: str | Path, report: Callable[[str], None] = print, modify: bool = True
) -> Path | None:
    """The checkpoint a relaunched run continues from: ``last`` if it loads, else the newest
    checkpoint of its folder that does (None: none, start over).

    With ``modify`` (the process that owns the run folder), orphaned temporary files of a killed
    write are removed and a ``last`` that does not load is moved aside to ``<name>.corrupt-<time>``;
    each is reported in one line through ``report``."""
    last = Path(last)
    folder = last.parent
    if not folder.is_dir():
        return None
    if modify:
        for orphan in sorted(folder.glob(".*.tmp-*")):
            orphan.unlink(missing_ok=True)
            report(f"[talker] removed {orphan} (left by an interrupted checkpoint write)")
    others = sorted(
        (p for p in folder.glob("*.ckpt") if p != last and p.is_file()), key=lambda p: p.stat().st_mtime, reverse=True
    )
    candidates = ([last] if last.is_file() else []) + others
    refused: list[str] = []
    for candidate in candidates:
        try:
            checkpoint = load_checkpoint(candidate, keys=("state_dict", "global_step"), mmap=True)
        except CheckpointError as exc:
            refused.append(str(exc))
            if modify and candidate == last:
                aside = last.with_name(CORRUPT.format(name=last.name, stamp=time.strftime("%Y%m%d-%H%M%S")))
                os.replace(last, aside)
                report(f"[talker] {exc}; moved to {aside.name}")
            continue
        if candidate != last:
            report(f"[talker] resuming from {candidate} (step {checkpoint['global_step']}), the newest checkpoint that loads")
        return candidate
    if refused:
        report(f"[talker] no checkpoint in {folder} loads; starting over")
    return None
