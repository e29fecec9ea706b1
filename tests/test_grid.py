"""Grids: finished cells are skipped, failed cells do not stop the others, GPUs are claimed one per cell."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from talker.config import ConfigError, check_overrides, compose_config, group_options
from talker.fit import train
from talker.grid import claim_device
from talker.runs import RunFolder

from .conftest import TINY


@pytest.mark.parametrize("launcher", group_options("launcher"))
def test_launcher_configs_compose_for_every_experiment(launcher: str) -> None:
    for experiment in group_options("experiment"):
        check_overrides([f"experiment={experiment}", f"launcher={launcher}"])
    cfg = compose_config([f"launcher={launcher}"], return_hydra_config=True)
    expected = {"basic": "BasicLauncher", "local": "JoblibLauncher", "local_gpus": "JoblibLauncher",
                "slurm": "SlurmLauncher"}[launcher]
    assert cfg.hydra.launcher._target_.endswith(expected)
    assert cfg.claim_device == (launcher == "local_gpus")


def test_launcher_is_not_part_of_the_run_name() -> None:
    from talker.config import cell_name

    assert cell_name(["launcher=slurm", "conditioning=landmark_hash"]) == "conditioning=landmark_hash"


def test_devices_are_claimed_one_per_cell(tmp_path: Path) -> None:
    with claim_device(tmp_path, 2) as first, claim_device(tmp_path, 2) as second:
        assert {first, second} == {0, 1}
        got: list[int] = []
        waiter = threading.Thread(target=lambda: got.append(_claim_once(tmp_path)))
        waiter.start()
        waiter.join(timeout=0.5)
        assert waiter.is_alive() and not got  # both GPUs busy: the third cell waits
    waiter.join(timeout=5)
    assert got and got[0] in (0, 1)  # and gets one as soon as a cell ends


def _claim_once(lock_dir: Path) -> int:
    with claim_device(lock_dir, 2, poll_s=0.05) as index:
        return index


def test_finished_run_is_skipped_and_a_longer_one_resumes(tiny_overrides: list[str], tmp_path: Path) -> None:
    run = train(compose_config([*tiny_overrides, "trainer.max_steps=3"]))
    stamp = (run / "metrics.json").stat().st_mtime_ns
    train(compose_config([*tiny_overrides, "trainer.max_steps=3"]))
    assert (run / "metrics.json").stat().st_mtime_ns == stamp  # skipped: nothing rewritten
    train(compose_config([*tiny_overrides, "trainer.max_steps=5"]))
    assert json.loads((run / "metrics.json").read_text())["global_step"] == 5


def test_a_run_folder_with_other_settings_is_protected(tiny_overrides: list[str]) -> None:
    train(compose_config([*tiny_overrides, "trainer.max_steps=2"]))
    with pytest.raises(ConfigError, match=r"holds a run with other settings \(model\.lr_net\).*resume=false"):
        train(compose_config([*tiny_overrides, "trainer.max_steps=2", "model.lr_net=5e-3"]))
    run = train(compose_config([*tiny_overrides, "trainer.max_steps=2", "model.lr_net=5e-3", "resume=false"]))
    assert json.loads((run / "metrics.json").read_text())["global_step"] == 2


@pytest.mark.slow
def test_failed_cell_does_not_stop_the_grid_and_relaunch_redoes_only_it(data_dir: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    # num_frames=3 is rejected by the generator: that cell fails, the other one must still run.
    args = [
        sys.executable, "-m", "talker.fit", "experiment=quickstart", *TINY,
        f"paths.data_dir={data_dir}", f"paths.runs_dir={runs}", "trainer.max_steps=2",
        "data.synthetic.num_frames=3,12",
    ]
    first = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert first.returncode == 1, first.stderr[-2000:]
    assert "1 of 2 cells failed" in first.stderr and "num_frames must be at least 4" in first.stderr
    cells = sorted((runs / "quickstart").iterdir())
    failed = [c for c in cells if (c / RunFolder.FAILED).is_file()]
    done = [c for c in cells if (c / "metrics.json").is_file()]
    assert len(failed) == 1 and len(done) == 1
    assert failed[0].name.startswith("data.synthetic.num_frames=3,") and done[0].name.startswith("data.synthetic.num_frames=12,")
    stamp = (done[0] / "metrics.json").stat().st_mtime_ns

    second = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert second.returncode == 1
    assert "skipping" in second.stdout + second.stderr
    assert (done[0] / "metrics.json").stat().st_mtime_ns == stamp  # the finished cell was not redone


def test_grid_axes_lead_the_cell_names() -> None:
    from talker.config import cell_name, grid_axes

    cells = [["conditioning=a", "data.x=1", "z.long_tuning_key=7"], ["conditioning=a", "data.x=2", "z.long_tuning_key=7"]]
    assert grid_axes(cells) == ["data.x"]
    assert cell_name(cells[1], axes=["data.x"]).startswith("data.x=2,conditioning=a")
