"""CPU threads: a config key with a default that shares the cores among the cells run at once."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from talker.config import ConfigError, compose_config
from talker.fit import train
from talker.utils.threads import available_cores, resolve_threads


def test_an_explicit_count_wins_then_the_environment_then_the_share_of_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert resolve_threads(5, parallel_cells=4) == 5
    assert resolve_threads(None, parallel_cells=4) == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)))  # a 16-core SLURM allocation
    assert available_cores() == 16
    assert [resolve_threads(None, parallel_cells=n) for n in (1, 2, 3, 32)] == [16, 8, 5, 1]
    with pytest.raises(ValueError, match="threads=0: must be at least 1"):
        resolve_threads(0)


def test_the_local_launcher_runs_parallel_cells_at_once() -> None:
    cfg = compose_config(["launcher=local", "parallel_cells=3"], return_hydra_config=True)
    assert cfg.hydra.launcher.n_jobs == 3 and cfg.threads is None
    gpus = compose_config(["launcher=local_gpus"], return_hydra_config=True)
    assert gpus.hydra.launcher.n_jobs == gpus.parallel_cells == max(1, torch.cuda.device_count())


def test_a_fit_uses_and_records_its_threads(tiny_overrides: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        run = train(compose_config([*tiny_overrides, "trainer.max_steps=1", "threads=1"]))
        assert torch.get_num_threads() == 1
        assert OmegaConf.load(Path(run) / "config.yaml").threads == 1
        with pytest.raises(ConfigError, match="threads=0"):
            train(compose_config([*tiny_overrides, "trainer.max_steps=1", "threads=0", "resume=false"]))
    finally:
        torch.set_num_threads(before)


def test_waiting_openmp_threads_sleep_after_a_short_spin_unless_the_environment_says_otherwise() -> None:
    import os
    import subprocess
    import sys

    probe = "import talker, torch, os; print(os.environ['OMP_WAIT_POLICY'], os.environ['GOMP_SPINCOUNT'])"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    run = lambda env: subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)  # noqa: E731
    assert run(env).stdout.split() == ["PASSIVE", "1000"]
    assert run({**env, "OMP_WAIT_POLICY": "ACTIVE", "GOMP_SPINCOUNT": "0"}).stdout.split() == ["ACTIVE", "0"]
