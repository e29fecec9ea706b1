"""A private torch cache per test: weights made by the test go where torch.hub would cache real ones."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture()
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``$TORCH_HOME`` in a temporary folder; returns its ``hub/checkpoints`` directory."""
    home = tmp_path / "torch_home"
    checkpoints = home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    monkeypatch.setenv("TORCH_HOME", str(home))
    return checkpoints
