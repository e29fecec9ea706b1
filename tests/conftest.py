"""Shared fixtures: the real config tree composed with tiny sizes, and a tiny synthetic clip.

Every test composes configs/ exactly as ``talker.fit`` does and only shrinks sizes, so a test
that passes here exercises the same code path a user runs.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

from talker.config import TINY_NETWORK

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never wait on the hub from a test
os.environ["TALKER_OFFLINE"] = "1"  # no download is attempted (tests of the downloads switch this off)
os.environ["TALKER_TRUSTED_MODULES"] = "tests"  # configs of the tests may build test-only classes (tests.test_fit.KillAt)
# Tests make the weights they need: never read whatever the user's torch cache holds.
os.environ["TORCH_HOME"] = tempfile.mkdtemp(prefix="talker-tests-torch-")
atexit.register(shutil.rmtree, os.environ["TORCH_HOME"], ignore_errors=True)
torch.set_num_threads(min(2, torch.get_num_threads()))

REPO = Path(__file__).resolve().parent.parent
# Real media and MediaPipe's face_landmarker.task: $TALKER_SHARED, or ../shared next to a checkout
# (a worktree sits one level deeper). CI clones may not have it.
_CANDIDATES = [Path(os.environ["TALKER_SHARED"])] if "TALKER_SHARED" in os.environ else []
SHARED = next((p for p in (*_CANDIDATES, REPO.parent / "shared", REPO.parent.parent / "shared") if p.is_dir()), None)
SHARED_DATA = SHARED / "data" if SHARED else REPO.parent / "shared" / "data"

# Overrides that shrink any experiment to a seconds-long CPU smoke run.
TINY = [
    "data.synthetic.num_frames=12",
    "data.synthetic.resolution=32",
    "data.synthetic.val_fraction=0.25",
    "data.num_rays=128",
    "data.val_frames=1",
    *TINY_NETWORK,
    "schedule.head_steps=4000",
    "schedule.scale=0.001",
    "trainer.val_check_interval=2",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "callbacks.checkpoint.every_n_train_steps=2",
    "callbacks.evaluation.speed.frames=2",
    "callbacks.evaluation.speed.warmup=1",
]

# experiment=baselines shrunk the same way: TINY without the conditioning sizes (its systems' strategies
# have different parameters), 2 torso steps, a tiny torso field, one second of cross-driving audio.
BASELINES_TINY = [
    *(o for o in TINY if not o.startswith("conditioning.")),
    "schedule.torso_steps=2000",
    "model.head.torso.grid.num_levels=2",
    "model.head.torso.grid.log2_hashmap_size=10",
    "model.head.torso.hidden_dim=8",
    "model.head.torso.deform_hidden=8",
    "callbacks.cross_driven.seconds=1.0",
]

# The motion stage (experiment=motion) shrunk the same way: a short clip, a tiny generator and expert.
MOTION_TINY = [
    "experiment=motion",
    "data.synthetic.num_frames=80",
    "data.synthetic.resolution=32",
    "data.synthetic.val_fraction=0.25",
    "data.sequence_frames=20",
    "data.batch_size=2",
    "data.crops_per_epoch=4",
    "generator.hidden=8",
    "generator.flow_hidden=8",
    "generator.flow_layers=2",
    "model.sync_expert.hidden=8",
    "model.sync_expert.embed=8",
    "model.sync_start=2",
    "trainer.max_steps=4",
    "trainer.val_check_interval=2",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "callbacks.checkpoint.every_n_train_steps=2",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "requires_cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache of generated datasets for the whole session."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture()
def tiny_overrides(data_dir: Path, tmp_path: Path) -> list[str]:
    return [*TINY, f"paths.data_dir={data_dir}", f"paths.runs_dir={tmp_path / 'runs'}", f"run_dir={tmp_path / 'run'}"]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (or $TALKER_SHARED/data); tests that need real media skip without it."""
    if not (SHARED_DATA / "audio").is_dir():
        pytest.skip(f"real media not available: {SHARED_DATA} absent (set TALKER_SHARED to the folder holding data/ and models/)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_clip(data_dir: Path) -> Path:
    """A 12-frame, 32 px synthetic dataset on disk."""
    from talker.data.synthetic import SyntheticClip

    return SyntheticClip(num_frames=12, resolution=32, val_fraction=0.25).ensure(data_dir)


@pytest.fixture(scope="session")
def tiny_speech(tiny_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two 1.2 s clips standing in for out-of-domain speech (no ../shared needed): the tiny clip's
    own audio looped, forwards and reversed."""
    import numpy as np

    from talker.audio import load_audio, write_wav

    audio = np.tile(load_audio(tiny_clip / "aud.wav"), 3)[: int(1.2 * 16000)]
    folder = tmp_path_factory.mktemp("speech")
    write_wav(folder / "a.wav", audio)
    write_wav(folder / "b.wav", audio[::-1].copy())
    return {"a": folder / "a.wav", "b": folder / "b.wav"}


@pytest.fixture(scope="session")
def syncnet_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TORCH_HOME holding random SyncNet weights made here (the real file cannot be downloaded):
    Sync then runs its whole procedure, with meaningless values. Use with monkeypatch.setenv."""
    from talker.metrics.sync import SYNCNET_FILE, SyncNet

    home = tmp_path_factory.mktemp("torch_home")
    (home / "hub" / "checkpoints").mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(SyncNet().state_dict(), home / "hub" / "checkpoints" / SYNCNET_FILE)
    return home


@pytest.fixture(scope="session")
def alexnet_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random AlexNet weights in lpips' format, made once (61M parameters; the real file cannot be
    downloaded here). Tests using it importorskip torchvision and lpips first."""
    import torchvision

    from talker.metrics.perceptual import ALEXNET_FILE

    path = tmp_path_factory.mktemp("alexnet") / ALEXNET_FILE
    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet().state_dict(), path)
    return path


class _CallsOnLoad:
    """Pickles as a call of ``os.mkdir(marker)``: what a crafted checkpoint would run while it loads."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def write_crafted_checkpoint(path: Path, marker: Path) -> Path:
    """A checkpoint-shaped file whose pickle creates the folder ``marker`` if it is ever unpickled
    by a loader that lets pickles call functions (torch.load without weights_only): the test sees that it did."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {}, "global_step": 1, "payload": _CallsOnLoad(marker)}, path)
    return path


@pytest.fixture()
def mount_tmpfs():
    """``mount(folder, size_bytes)``: a size-limited tmpfs mounted at ``folder`` for the test (a small
    disk that fills up for real); skips where this process may not mount (not root, no CAP_SYS_ADMIN)."""
    import shutil
    import subprocess

    mounted: list[Path] = []

    def mount(folder: Path, size_bytes: int) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        if shutil.which("mount") is None:
            pytest.skip("no mount command: the injected-ENOSPC variant covers the same code")
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(folder)], capture_output=True, text=True
        )
        if proc.returncode != 0:
            reason = proc.stderr.strip() or f"exit {proc.returncode}"
            pytest.skip(f"cannot mount a size-limited tmpfs here ({reason}); the injected-ENOSPC variant covers the same code")
        mounted.append(folder)
        return folder

    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)
