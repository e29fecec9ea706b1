"""Installation facts: a CPU torch stays CPU, and torchvision-dependent packages import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from talker import install


def test_constraints_pin_torch_and_torchvision() -> None:
    pins = (Path(__file__).resolve().parent.parent / "constraints.txt").read_text()
    assert "torch==2.13.0" in pins and "torchvision==0.28.0" in pins and "protobuf>=6.31.1,<7" in pins


def test_metric_packages_import_in_a_fresh_interpreter() -> None:
    pytest.importorskip("lpips")
    code = "import torchvision, lpips, pytorch_fid, lightning, torchmetrics; print(torchvision.__version__)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_shim_is_not_installed_for_a_gpu_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    message = install.install_torchvision_shim(tmp_path)
    assert "GPU build" in message and not list(tmp_path.iterdir())


def test_shim_hook_declares_the_import_time_ops(tmp_path: Path) -> None:
    # The hook source must be valid Python defining a meta-path finder.
    namespace: dict = {}
    exec(compile(install.HOOK_SOURCE, "hook", "exec"), namespace)  # noqa: S102
    finder = namespace["_TorchvisionCpuShim"]
    assert any(isinstance(f, finder) for f in sys.meta_path)
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, finder)]
