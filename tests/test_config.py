"""The config tree: every experiment composes, errors are one line (grid axes: tests/test_experiments.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from talker.config import ConfigError, check_overrides, compose_config, group_options, instantiate

EXPERIMENTS = group_options("experiment")
AXES = ("data", "conditioning", "schedule", "field", "model", "trainer", "logger", "callbacks")


def test_experiments_exist() -> None:
    assert {"quickstart", "ablation"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_and_every_cell_composes(experiment: str) -> None:
    cells = check_overrides([f"experiment={experiment}"])
    for cell in cells:
        cfg = compose_config(cell)
        cfg.run_dir = "runs/x"  # set by Hydra at run time
        OmegaConf.resolve(cfg)  # every interpolation resolves
        for group in ("data", "model", "trainer"):
            assert "_target_" in cfg[group]


def run_fit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "talker.fit", *args], capture_output=True, text=True, timeout=120)


def test_unknown_strategy_fails_in_one_line() -> None:
    proc = run_fit("conditioning=landmark_hsh")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "conditioning=landmark_hsh" in lines[0]
    assert "landmark_hash" in lines[0] and "landmark_hash_concat" in lines[0]


def test_typo_key_fails_in_one_line_with_a_suggestion() -> None:
    proc = run_fit("model.lr_nett=1e-3")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "model.lr_nett" in lines[0] and "'lr_net'" in lines[0] and "valid keys under model" in lines[0]


def test_bad_cell_of_a_grid_fails_before_training() -> None:
    proc = run_fit("experiment=ablation", "conditioning=landmark_hash,nope")
    assert proc.returncode == 2
    assert "conditioning=nope" in proc.stderr and "valid choices" in proc.stderr
    assert "Epoch" not in proc.stdout


def test_unknown_constructor_key_names_the_config_path() -> None:
    cfg = compose_config(["+conditioning.fusion.hiden_dim=3"])
    with pytest.raises(ConfigError, match=r"conditioning\.fusion\.hiden_dim: not a parameter of .*AffineFusion \(did you mean 'hidden_dim'\?\)"):
        instantiate(cfg.conditioning, "conditioning")


def test_missing_dataset_root_is_named() -> None:
    with pytest.raises(ConfigError, match=r"^data: ValueError: data\.root is not set: give a dataset folder"):
        cfg = compose_config(["data=folder"])
        instantiate(cfg.data, "data")


def test_experiment_files_state_only_what_changes() -> None:
    # An experiment that copied a whole group would repeat its _target_; they select groups instead.
    from talker.config import config_dir

    for path in (config_dir() / "experiment").glob("*.yaml"):
        assert "_target_" not in path.read_text(), f"{path.name} copies a config group; override keys instead"


@pytest.mark.parametrize("name", group_options("conditioning"))
def test_instantiated_model_uses_the_chosen_strategy(name: str) -> None:
    """The head module built from conditioning=<name> holds that strategy, bound to its field."""
    from .conftest import TINY

    cfg = compose_config([f"conditioning={name}", *(o for o in TINY if not o.startswith("conditioning."))])
    module = instantiate(cfg.model, "model")
    strategy, field = module.head.conditioning, module.head.field
    assert f"{type(strategy).__module__}.{type(strategy).__name__}".endswith(cfg.conditioning._target_.rsplit(".", 1)[-1])
    assert type(strategy.fusion).__name__ == cfg.conditioning.fusion._target_.rsplit(".", 1)[-1]
    spec = strategy.spec
    assert field.sigma_net.dim_in == field.encoder.output_dim + spec.vector_dim + spec.spatial_dim
    assert strategy._bound  # sized to the field's hidden layers


def test_cell_names_put_axes_first_and_stay_short() -> None:
    from talker.config import cell_name

    assert cell_name([]) == "default"
    assert cell_name(["experiment=ablation", "paths.runs_dir=/tmp/x", "schedule=progressive", "conditioning=landmark_hash"]) == (
        "conditioning=landmark_hash,schedule=progressive"
    )
    assert cell_name(["trainer.max_steps=5", "conditioning=a"]) == "conditioning=a,trainer.max_steps=5"
    many = ["conditioning=landmark_hash"] + [f"model.key_{i}=value_{i}" for i in range(40)]
    name = cell_name(many)
    assert len(name) <= 120 and name.startswith("conditioning=landmark_hash,") and "more-" in name
    assert cell_name(many[:-1]) != name  # shortened names stay unique
