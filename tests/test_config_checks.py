"""The declared ranges of numeric config keys: complete for every shipped config, checked at
composition, and the allow-list of classes a config may build."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from talker.config import ConfigError, allowed_target, compose_config, group_options, load_config_file
from talker.config_checks import Bound, bound_of, cli_value, leaves


def shipped_configs() -> list[list[str]]:
    """Compositions that together use every config file: each experiment and system, and each
    conditioning strategy with one variant of another group (arms only pick groups; callbacks=motion
    comes with experiment=motion)."""
    variants = [[f"schedule={s}"] for s in group_options("schedule")] + [[f"trainer={t}"] for t in group_options("trainer")]
    variants += [[f"callbacks=[default,{c}]"] for c in group_options("callbacks") if c not in ("default", "motion")]
    conditionings = group_options("conditioning")
    return [
        *([f"experiment={e}"] for e in group_options("experiment") if e not in ("postnet", "motion")),
        ["experiment=postnet", "model.motion_run=/a/motion/run"],
        *(["experiment=motion", f"generator={g}"] for g in group_options("generator")),
        *([f"system={s}"] for s in group_options("system")),
        *([f"conditioning={c}", *variants[i % len(variants)]] for i, c in enumerate(conditionings)),
        *variants[len(conditionings):],
    ]


def test_every_numeric_key_of_every_shipped_config_has_a_declared_range() -> None:
    """A new numeric key must be declared in talker.config_checks.CONSTRAINTS (or it goes unchecked).
    compose_config also checks every value against its range, so the shipped values are in range."""
    undeclared = set()
    for overrides in shipped_configs():
        for key, value, _ in leaves(compose_config(overrides)):
            if isinstance(value, (int, float)) and not isinstance(value, bool) and bound_of(key) is None:
                undeclared.add(f"{key} ({' '.join(overrides) or 'defaults'})")
    assert not undeclared, sorted(undeclared)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.num_rays=0", "data.num_rays=0: must be an integer >= 1"),
        ("data.num_rays=abc", "data.num_rays=abc: must be an integer >= 1 (got str 'abc')"),
        ("data.num_rays=true", "data.num_rays=True: must be an integer >= 1 (got bool True)"),
        ("schedule.scale=0", "schedule.scale=0: must be a number > 0"),
        ("schedule.scale=inf", "schedule.scale=inf: must be a number > 0"),
        ("data.mouth_fraction=0.6", "data.face_fraction=0.5 + data.mouth_fraction=0.6 = 1.1: shares of one batch must sum to at most 1"),
        ("schedule.lips_start=-1", "schedule.lips_start=-1: must be an integer >= 0 (or null)"),
        ("conditioning.num_landmarks=60", "conditioning.num_landmarks=60: must be an integer equal to 68"),
    ],
)
def test_out_of_range_values_fail_at_composition_in_one_line(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        compose_config([override])
    assert str(error.value) == message


def test_references_are_checked_where_they_are_written() -> None:
    """``model.field: ${field}``: a bad value is reported at field.*, the key the user wrote."""
    with pytest.raises(ConfigError, match=r"^field.hidden_dim=0: "):
        compose_config(["field.hidden_dim=0"])
    keys = {key for key, _, _ in leaves(compose_config([]))}
    assert "field.hidden_dim" in keys and "model.field.hidden_dim" not in keys


def test_computed_values_are_checked_too() -> None:
    """trainer.max_steps is computed from the schedule (${steps:...}); a plain value is checked first,
    so that a wrong input is named rather than the key computed from it."""
    cfg = compose_config([])
    assert ("trainer.max_steps", 240000, True) in leaves(cfg)
    with pytest.raises(ConfigError, match=r"^schedule.head_steps=abc: "):
        compose_config(["schedule.head_steps=abc"])


def test_bound_descriptions() -> None:
    assert Bound(int, low=1).describe() == "an integer >= 1"
    assert Bound(float, low=0, high=1, low_open=True).describe() == "a number in (0, 1]"
    assert Bound(int, low=1, words=("auto",)).describe() == "an integer >= 1 (or 'auto')"
    assert Bound(int, low=1, words=("auto",)).accepts("auto") and not Bound(int, low=1).accepts("auto")


def test_command_line_numbers_use_the_declared_ranges() -> None:
    assert cli_value("temperature", "0.5", "model.temperature") == 0.5
    assert cli_value("seed", "3", "seed") == 3
    with pytest.raises(ConfigError, match=r"^temperature=-1: must be a number >= 0$"):
        cli_value("temperature", "-1", "model.temperature")


def test_only_classes_of_talker_and_the_named_libraries_may_be_built() -> None:
    assert allowed_target("talker.modules.head.HeadModule")
    assert allowed_target("lightning.pytorch.callbacks.ModelCheckpoint")
    assert allowed_target("torch.optim.AdamW")
    for target in ("os.system", "builtins.eval", "subprocess.Popen", "torch.load", "hydra.utils.get_method",
                   "talker.utils.io.write_text_atomic", "talker.fit.main", "lightning.Trainerx"):
        assert not allowed_target(target), target
    with pytest.raises(ConfigError, match=r"^model._target_=os.system: refused"):
        compose_config(["model._target_=os.system"])


def test_a_run_config_naming_another_target_is_refused_with_its_file(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    cfg = OmegaConf.to_container(compose_config(["run_dir=/x"]), resolve=True)
    cfg["data"]["synthetic"]["_target_"] = "os.system"
    config.write_text(OmegaConf.to_yaml(cfg))
    with pytest.raises(ConfigError, match=rf"^{config}: data.synthetic._target_=os.system: refused"):
        load_config_file(config)
