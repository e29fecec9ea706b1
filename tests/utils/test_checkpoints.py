"""Checkpoints: weights-only reads that run nothing, atomic writes that a full disk cannot damage,
and the start-of-run choice of the checkpoint to resume from."""

from __future__ import annotations

import errno
import os
import pickletools
import zipfile
from pathlib import Path

import pytest
import torch

from talker.utils import checkpoints
from talker.utils.checkpoints import (
    CheckpointError, load_checkpoint, previous_path, resume_checkpoint, save_checkpoint,
)

from ..conftest import write_crafted_checkpoint


def state(step: int, size: int = 1000) -> dict:
    torch.manual_seed(step)
    return {"state_dict": {"w": torch.randn(size)}, "global_step": step}


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_crafted_checkpoint_is_refused_before_its_code_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = write_crafted_checkpoint(tmp_path / "last.ckpt", marker)
    with zipfile.ZipFile(path) as archive:  # the file really asks for os.mkdir while it unpickles
        pickled = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
    calls = [arg for op, arg, _ in pickletools.genops(pickled) if op.name in ("GLOBAL", "STACK_GLOBAL", "SHORT_BINUNICODE")]
    assert "mkdir" in " ".join(str(c) for c in calls)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert str(path) in message and "refused" in message and "mkdir" in message and "\n" not in message
    assert not marker.exists()


def test_save_is_atomic_keeps_the_previous_one_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints" / "last.ckpt"
    save_checkpoint(state(2), path)
    assert files(path.parent) == ["last.ckpt"]
    save_checkpoint(state(4), path)
    assert files(path.parent) == ["last-previous.ckpt", "last.ckpt"]
    assert load_checkpoint(path)["global_step"] == 4
    assert load_checkpoint(previous_path(path))["global_step"] == 2
    checkpoints.remove_checkpoint(path)
    assert files(path.parent) == []


def test_a_full_disk_while_writing_keeps_the_old_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Injected ENOSPC after part of the file is written: the error names the file, the old
    checkpoint is untouched and no temporary file is left."""
    path = tmp_path / "last.ckpt"
    save_checkpoint(state(2), path)
    before = path.read_bytes()

    real_open = open

    class FillsUp:
        """A file that takes half of what is written, then reports a full disk."""

        def __init__(self, *args, **kwargs) -> None:
            self.fh = real_open(*args, **kwargs)

        def write(self, data) -> int:
            self.fh.write(bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self.fh.close()

    monkeypatch.setattr(checkpoints, "open", FillsUp, raising=False)
    with pytest.raises(CheckpointError, match=r"last.ckpt: not written \(No space left on device\); last.ckpt still holds"):
        save_checkpoint(state(4), path)
    assert path.read_bytes() == before
    assert files(tmp_path) == ["last.ckpt"]


def test_a_really_full_file_system_keeps_the_old_checkpoint(tmp_path: Path, mount_tmpfs) -> None:
    """The same on a small tmpfs that fills up for real."""
    probe = tmp_path / "probe.ckpt"
    torch.save(state(0, 50_000), probe)
    size = probe.stat().st_size
    folder = mount_tmpfs(tmp_path / "small", int(size * 2.5))
    path = folder / "last.ckpt"
    save_checkpoint(state(2, 50_000), path)
    save_checkpoint(state(4, 50_000), path)  # last + previous: the disk now has room for half a checkpoint
    last, previous = path.read_bytes(), previous_path(path).read_bytes()
    with pytest.raises(CheckpointError, match="No space left on device"):
        save_checkpoint(state(6, 50_000), path)
    assert path.read_bytes() == last and previous_path(path).read_bytes() == previous
    assert files(folder) == ["last-previous.ckpt", "last.ckpt"]
    assert load_checkpoint(path)["global_step"] == 4


def test_truncated_last_is_moved_aside_and_the_previous_one_resumes(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    save_checkpoint(state(2), path)
    save_checkpoint(state(4), path)
    damaged = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(damaged)
    with pytest.raises(CheckpointError, match=r"last.ckpt: not a complete checkpoint \(truncated or damaged"):
        load_checkpoint(path)
    notes: list[str] = []
    chosen = resume_checkpoint(path, report=notes.append)
    assert chosen == previous_path(path)
    assert [p for p in files(tmp_path) if p.startswith("last.ckpt.corrupt-")]
    aside = next(tmp_path.glob("last.ckpt.corrupt-*"))
    assert aside.read_bytes() == damaged  # kept, not deleted
    assert len(notes) == 2 and "moved to last.ckpt.corrupt-" in notes[0] and "(step 2)" in notes[1]


def test_orphaned_temporary_files_are_removed_at_start(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    save_checkpoint(state(2), path)
    orphan = tmp_path / ".last.ckpt.tmp-999999"
    orphan.write_bytes(b"\0" * 1000)  # what a kill during the write leaves
    notes: list[str] = []
    assert resume_checkpoint(path, report=notes.append) == path
    assert not orphan.exists() and "interrupted checkpoint write" in notes[0]


def test_nothing_to_resume_from(tmp_path: Path) -> None:
    assert resume_checkpoint(tmp_path / "checkpoints" / "last.ckpt") is None
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"not a checkpoint")
    notes: list[str] = []
    assert resume_checkpoint(tmp_path / "checkpoints" / "last.ckpt", report=notes.append) is None
    assert "starting over" in notes[-1]
    assert list((tmp_path / "checkpoints").glob("last.ckpt.corrupt-*"))


def test_every_torch_load_in_talker_is_weights_only() -> None:
    """No file of the package unpickles with function calls allowed (weights_only not True; unset
    meant allowed before torch 2.6); checkpoints go through load_checkpoint."""
    import ast

    package = Path(checkpoints.__file__).resolve().parents[1]
    unsafe = []
    for source in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load":
                if not (isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"):
                    continue
                flag = next((k.value for k in node.keywords if k.arg == "weights_only"), None)
                if not (isinstance(flag, ast.Constant) and flag.value is True):
                    unsafe.append(f"{source.relative_to(package.parent)}:{node.lineno}")
    assert not unsafe, unsafe
