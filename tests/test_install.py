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


def _copy_checkout(target: Path) -> Path:
    """The source tree without what a working checkout accumulates (venv, runs, data, build outputs)."""
    import shutil

    repo = Path(__file__).resolve().parent.parent
    skip = {".git", ".venv", "runs", "data", "models", "outputs", "multirun", "tables", "build", ".pytest_cache"}
    shutil.copytree(repo, target, ignore=lambda folder, names: [
        n for n in names if (Path(folder) == repo and n in skip) or n == "__pycache__" or n.endswith(".egg-info")
    ])
    return target


@pytest.mark.slow
def test_the_wheel_installs_and_fits_from_any_directory(tmp_path: Path) -> None:
    """Build the wheel, install it (offline) into a fresh virtual environment that borrows this one's
    dependencies, and run a tiny quickstart from an unrelated folder: the config tree and the table
    specifications come from the installed package, runs/ and data/ go under the working directory."""
    import os
    import sysconfig
    import venv

    from .conftest import TINY

    source = _copy_checkout(tmp_path / "source")
    wheels = tmp_path / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(source)]
    subprocess.run(build, check=True, capture_output=True, timeout=600)
    (wheel,) = wheels.glob("talker-*.whl")

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # Borrow this environment's packages (torch, lightning, ...) as a plain path: its .pth files, among
    # them an editable talker's finder, are not processed there.
    (site / "borrowed.pth").write_text("\n".join(dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])) + "\n")
    # --ignore-installed: the borrowed environment may hold a talker of its own (editable), which must
    # neither satisfy the requirement nor be uninstalled; the dependencies are the borrowed ones.
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-index", "--no-deps",
               "--ignore-installed", str(wheel)]
    subprocess.run(install, check=True, capture_output=True, timeout=600)
    subprocess.run([str(python), "-m", "talker.install"], check=True, capture_output=True, timeout=300)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TALKER_MODELS_DIR")}
    probe = ("import talker, talker.config as c, talker.reporting.tables as t; "
             "print(talker.__file__); print(c.config_dir()); print(t.load_table_spec('table4').name)")
    where = subprocess.run([str(python), "-c", probe], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert where.returncode == 0, where.stderr[-2000:]
    package, configs, table = where.stdout.split()
    assert Path(package).is_relative_to(site) and Path(configs) == site / "talker" / "configs" and table == "table4"

    assert (env_dir / "bin" / "talker-fit").is_file()  # the console scripts come with it
    fit = [str(python), "-m", "talker.fit", "experiment=quickstart", *TINY, "trainer.max_steps=2"]
    done = subprocess.run(fit, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert list((elsewhere / "runs" / "quickstart").glob("*/metrics.json"))
    assert list((elsewhere / "data" / "synthetic").iterdir())
    assert wheel.name.startswith("talker-0.1.0")
