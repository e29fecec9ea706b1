"""Run folders: which settings make a run another run, and one-line errors for what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from talker.config import ConfigError
from talker.runs import RunFolder, config_differences


def test_config_differences_ignore_where_and_how_long() -> None:
    old = {"model": {"lr_net": 1e-3}, "trainer": {"max_steps": 5}, "data": {"cache_dir": "/a", "num_rays": 8}}
    new = {"model": {"lr_net": 1e-3}, "trainer": {"max_steps": 9}, "data": {"cache_dir": "/b", "num_rays": 16}}
    assert config_differences(old, new) == ["data.num_rays"]


def test_missing_files_fail_in_one_line_naming_them(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "run")
    with pytest.raises(ConfigError, match=r"run/config.yaml: missing; is .* a talker run folder"):
        run.config()
    with pytest.raises(ConfigError, match=r"run/checkpoints/last.ckpt: missing; the head stage of .* was never trained"):
        run.load_module(cfg=OmegaConf.create({"model": {}}), what="head stage")
    assert run.metrics() is None and not run.is_trained() and run.resume_checkpoint(resume=True) is None
