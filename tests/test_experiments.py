"""The ablation grids change one axis at a time: every cell equals the reference cell elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from omegaconf import OmegaConf

from talker.config import arm_rows, check_overrides, compose_config, group_files, group_options
from talker.reporting import build_table, collect_runs, load_table_spec

from .conftest import REPO, TINY


def arm_axes(arm: str) -> set[str]:
    """The config groups an arm overrides (its YAML's ``override /<group>: ...`` defaults)."""
    defaults = yaml.safe_load(group_files("arm")[arm].read_text()).get("defaults") or []
    return {str(key).split("/", 1)[1] for item in defaults if isinstance(item, dict) for key in item if "/" in str(key)}


def flat(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a.b.c": leaf}`` of a config, interpolations left as written."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(flat(value, f"{prefix}{key}."))
        return out or {prefix[:-1]: {}}
    return {prefix[:-1]: node}


def composed(cell: list[str]) -> dict[str, Any]:
    return flat(OmegaConf.to_container(compose_config(cell), resolve=False))


def differing(a: dict[str, Any], b: dict[str, Any]) -> set[str]:
    return {key for key in a.keys() | b.keys() if a.get(key, "<absent>") != b.get(key, "<absent>")}


def setting_changes(a: list[str], b: list[str]) -> set[str]:
    """Keys that differ between two cells, leaving out the table row an arm declares (presentation)."""
    return {k for k in differing(composed(a), composed(b)) if k.split(".")[0] != "table_rows"}


def test_ablation_grid_is_every_arm_that_is_a_row_of_table4() -> None:
    cells = check_overrides(["experiment=ablation"])
    arms = [o.split("=", 1)[1] for cell in cells for o in cell if o.startswith("arm=")]
    assert arms == list(arm_rows("table4"))
    assert arms[:4] == ["rad_nerf", "landmark_encoding", "maglo", "progressive"]  # the paper's rows, in its order
    assert "progressive_concat" in group_options("arm") and "progressive_concat" not in arms  # an arm, not a row


@pytest.mark.parametrize("arm", group_options("arm"))
def test_every_arm_differs_from_the_reference_only_on_its_axes(arm: str) -> None:
    """An arm changes the groups it overrides and nothing else (its table row is presentation)."""
    changed = setting_changes(["experiment=ablation"], ["experiment=ablation", f"arm={arm}"])
    axes = arm_axes(arm)
    assert axes, f"arm={arm} overrides no config group"
    outside = sorted(k for k in changed if not any(k == a or k.startswith(a + ".") for a in axes))
    assert not outside, f"arm={arm} changes {outside} outside its axes {sorted(axes)}"


def test_each_arm_changes_one_thing_of_the_paper() -> None:
    """The paper's rows each add one module: the fusion, the landmark encoding, the level schedule."""
    reference = ["experiment=ablation", "arm=maglo"]
    for arm, axis in (("landmark_encoding", "conditioning.fusion"), ("progressive", "schedule.levels")):
        changed = setting_changes(reference, ["experiment=ablation", f"arm={arm}"])
        assert changed and all(k.startswith(axis) for k in changed), (arm, sorted(changed))
    assert not setting_changes(reference, ["experiment=ablation"])  # maglo is the reference cell


def test_ablation_rows_build_what_the_paper_names() -> None:
    targets = {}
    for arm in ("rad_nerf", "landmark_encoding", "maglo", "progressive"):
        cfg = compose_config(["experiment=ablation", f"arm={arm}"])
        targets[arm] = (cfg.conditioning._target_, cfg.conditioning.fusion._target_, cfg.schedule.levels._target_)
    assert targets["rad_nerf"][0].endswith("AudioSpatial")
    assert targets["landmark_encoding"][:2] == ("talker.conditioning.LandmarkHash", "talker.conditioning.ConcatFusion")
    assert targets["maglo"][1].endswith("AffineFusion") and targets["maglo"][2].endswith("AllLevels")
    assert targets["progressive"][1].endswith("AffineFusion") and targets["progressive"][2].endswith("ProgressiveLevels")


def test_level_dim_cells_differ_only_in_the_level_dim() -> None:
    cells = check_overrides(["experiment=level_dim"])
    configs = [composed(cell) for cell in cells]
    assert [c["field.position_encoder.level_dim"] for c in configs] == [2, 4, 8]
    for other in configs[1:]:
        assert differing(configs[0], other) == {"field.position_encoder.level_dim"}
    assert configs[0]["schedule.levels._target_"].endswith("ProgressiveLevels")  # Table 8 varies the full model


# --- Tables 1 and 2: experiment=baselines runs every system of configs/system ---------------------

SYSTEMS = ["r2talker", "rad_nerf", "er_nerf", "geneface_pp"]
# Systems of other papers than R2-Talker's: trained and scored like those above, not rows of its tables.
OTHER_SYSTEMS = ["lokitalk", "lokitalk_id"]


def test_baselines_grid_has_every_system_of_tables_1_and_2() -> None:
    from talker.config import group_options

    cells = check_overrides(["experiment=baselines"])
    assert [o.split("=", 1)[1] for cell in cells for o in cell if o.startswith("system=")] == SYSTEMS
    assert group_options("system") == sorted(SYSTEMS + OTHER_SYSTEMS)  # _instant_ngp.yaml is a shared part, not a system


def test_baselines_experiment_shrinks_every_system_the_same_way() -> None:
    """The experiment states only what it changes, and changes the same keys of every system."""
    changed = {s: differing(composed([f"system={s}"]), composed(["experiment=baselines", f"system={s}"])) for s in SYSTEMS}
    assert changed["r2talker"], "experiment=baselines changes nothing"
    for system, keys in changed.items():
        assert keys == changed["r2talker"], system
        assert not any(k.startswith(("field.", "conditioning.")) for k in keys), sorted(keys)


def test_baselines_give_every_system_one_head_budget() -> None:
    """Table 1's rows differ in method, never in how long they train (their papers' step counts differ)."""
    from talker.schedules.plan import real_steps

    schedules = {s: compose_config(["experiment=baselines", f"system={s}"]).schedule for s in SYSTEMS}
    budgets = {s: real_steps(c.head_steps, c.scale) for s, c in schedules.items()}
    assert set(budgets.values()) == {schedules["r2talker"].head_budget}, budgets


def test_systems_are_what_the_paper_compares() -> None:
    rad, geneface, er, ours = (composed([f"system={s}"]) for s in ("rad_nerf", "geneface_pp", "er_nerf", "r2talker"))
    arm = composed(["arm=rad_nerf"])
    conditioning = lambda cfg: {k: v for k, v in cfg.items() if k.startswith("conditioning.")}
    # RAD-NeRF reuses Table 4's rad_nerf arm's conditioning modules unchanged.
    assert conditioning(rad) == conditioning(arm)
    # GeneFace++ dagger is GeneFace's lm3d_radnerf: RAD-NeRF's training and its ambient decomposition
    # (the same ambient grid) with landmarks in place of audio, and GeneFace's wider nets without eye input.
    outside = {k for k in differing(rad, geneface) if not k.startswith("conditioning.")}
    assert outside == {"method", "field.hidden_dim", "field.geo_feat_dim", "field.hidden_dim_color", "field.density_inputs"}
    assert geneface["conditioning._target_"].endswith("LandmarkSpatial")
    assert geneface["conditioning.fusion._target_"] == rad["conditioning.fusion._target_"]
    assert {k: v for k, v in conditioning(geneface).items() if k.startswith("conditioning.grid.")} == {
        k: v for k, v in conditioning(rad).items() if k.startswith("conditioning.grid.")
    }
    # ER-NeRF: its own field, region attention, uncertainty loss and anchor pose encoding.
    assert er["field._target_"].endswith("ERNeRFField") and er["conditioning.fusion._target_"].endswith("RegionAttention")
    assert er["model.stages.head.photometric._target_"].endswith("UncertaintyWeightedMSE")
    assert er["model.head.torso.pose_encoding._target_"].endswith("AnchorPoseEncoding")
    # R2-Talker is the default config with progressive levels and the torso stage.
    assert differing(composed([]), ours) == {"method", "schedule.levels._target_", "schedule.levels.start_levels",
                                              "schedule.levels.every", "schedule.torso_steps"}


def test_systems_train_with_their_own_optimiser_schedule_and_stages() -> None:
    import torch

    from talker.config import instantiate

    modules = {s: instantiate(compose_config([f"system={s}"]).model, "model") for s in ("rad_nerf", "er_nerf", "r2talker")}
    optimisers = {s: type(m.configure_optimizers()["optimizer"]) for s, m in modules.items()}
    assert optimisers == {"rad_nerf": torch.optim.Adam, "er_nerf": torch.optim.AdamW, "r2talker": torch.optim.AdamW}
    rad, er, ours = modules["rad_nerf"], modules["er_nerf"], modules["r2talker"]
    assert rad.lr_factor(100_000) == pytest.approx(0.1 ** 0.5) and rad.stages["lips"].patch_every == 1  # paper steps at scale 1
    assert er.lr_factor(50_000) == pytest.approx(0.5 ** 0.5) and er.stage(100_000) == "lips"
    assert ours.lr_factor(150_000) == pytest.approx(0.1) and ours.stage(240_000) == "torso"
    # ER-NeRF: AdamW's 0.01 on the grids, none on the networks, 1e-4 on the audio attention net (at 5x).
    assert [g["weight_decay"] for g in er.configure_optimizers()["optimizer"].param_groups] == [0.01, 0.0, 1e-4]
    assert [g["lr"] for g in rad.configure_optimizers()["optimizer"].param_groups] == pytest.approx([5e-3, 5e-4, 5e-4, 2.5e-3])


def test_progressive_concat_is_the_progressive_axis_on_the_concat_row() -> None:
    """arm=progressive_concat tests the paper's claim that coarse-to-fine needs M-AGLO: it must be the
    concat row (landmark_encoding) with only the level schedule changed."""
    changed = setting_changes(["experiment=ablation", "arm=landmark_encoding"], ["experiment=ablation", "arm=progressive_concat"])
    assert changed and all(k.startswith("schedule.levels.") for k in changed), sorted(changed)


# --- A new Table-4 strategy is its module, its conditioning YAML and its arm file ------------------

TOY_MODULE = '''
"""A strategy written for the test: the mouth landmarks' centre, looked up in a hash grid."""
from talker.conditioning.base import ConditioningStrategy


class MouthCentre(ConditioningStrategy):
    inputs = ("landmarks",)

    def __init__(self, fusion, grid, lr=None):
        super().__init__(fusion, lr)
        self.grid = grid

    @property
    def cond_dim(self):
        return self.grid.output_dim

    def encode(self, inputs):
        return self.grid(inputs["landmarks"][:, 48:68].mean(dim=(0, 1))[None])[0]
'''

TOY_CONDITIONING = """
_target_: toy_strategy.MouthCentre
grid: {_target_: talker.encoders.HashGrid, input_dim: 3, num_levels: 4, level_dim: 2, base_resolution: 4,
       log2_hashmap_size: 10, desired_resolution: 32, bound: 1.0}
fusion: {_target_: talker.conditioning.AffineFusion, hidden_dim: 16, num_layers: 2}
"""

TOY_ARM = """# @package _global_
defaults:
  - override /conditioning: mouth_centre
table_rows:
  table4: {label: "+ Mouth centre", order: 2.5}
"""


@pytest.fixture()
def toy_strategy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding only the three files a new strategy needs, on the config search path."""
    (tmp_path / "toy_strategy.py").write_text(TOY_MODULE)
    configs = tmp_path / "configs"
    (configs / "conditioning").mkdir(parents=True)
    (configs / "arm").mkdir()
    (configs / "conditioning" / "mouth_centre.yaml").write_text(TOY_CONDITIONING)
    (configs / "arm" / "mouth_centre.yaml").write_text(TOY_ARM)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("TALKER_CONFIG_PATH", str(configs))
    monkeypatch.setenv("TALKER_TRUSTED_MODULES", "toy_strategy")  # configs may build its classes
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    return tmp_path


def test_a_new_strategy_needs_only_its_module_its_yaml_and_its_arm(toy_strategy: Path, data_dir: Path) -> None:
    """Dropped into a folder of its own, a test-only strategy joins the ablation grid (at its order)
    and Table 4's rows; its cell trains through the entry point and fills its row."""
    cells = check_overrides(["experiment=ablation"])
    arms = [o.split("=", 1)[1] for cell in cells for o in cell if o.startswith("arm=")]
    assert arms == ["rad_nerf", "landmark_encoding", "mouth_centre", "maglo", "progressive"]
    spec = load_table_spec("table4")
    assert [row.label for row in spec.rows][2] == "+ Mouth centre"
    assert spec.rows[2].where == {"conditioning": "mouth_centre", "schedule": "constant"}

    runs = toy_strategy / "runs"
    tiny = [o for o in TINY if not o.startswith("conditioning.")]
    proc = subprocess.run(
        [sys.executable, "-m", "talker.fit", "experiment=ablation", "arm=mouth_centre", "schedule.lips=false", *tiny,
         f"paths.data_dir={data_dir}", f"paths.runs_dir={runs}"],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = build_table(collect_runs(runs), "table4")
    assert table.cells[("+ Mouth centre", "PSNR")].n == 1 and table.cells[("+ M-AGLO", "PSNR")].n == 0


# --- LokiTalk Table 2: experiment=lokitalk_ablation -------------------------------------------------

LOKITALK_ROWS = {"audio_spatial": "O", "lokitalk_unified": "O+D", "lokitalk": "O+D+R"}


def test_lokitalk_ablation_rows_differ_only_in_the_conditioning() -> None:
    """O, O+D and O+D+R are system=lokitalk on the quickstart's head stage with another conditioning; O+D
    and O+D+R differ only in the strategy's fusion (the region-specific split)."""
    cells = check_overrides(["experiment=lokitalk_ablation"])
    swept = [o.split("=", 1)[1] for cell in cells for o in cell if o.startswith("conditioning=")]
    assert swept == list(LOKITALK_ROWS)
    configs = {c: composed(["experiment=lokitalk_ablation", f"conditioning={c}"]) for c in swept}
    for a in swept:
        for b in swept:
            assert all(k.startswith("conditioning.") for k in differing(configs[a], configs[b])), (a, b)
    assert differing(configs["lokitalk_unified"], configs["lokitalk"]) == {"conditioning.fusion._target_"}
    full = composed(["experiment=lokitalk_ablation", "conditioning=lokitalk"])
    # O+D+R is system=lokitalk at the quickstart's sizes, head stage only.
    assert differing(composed(["experiment=quickstart", "system=lokitalk", "schedule.torso_steps=0"]), full) <= {"name", "table", "hydra.mode", "hydra.sweeper.params.conditioning"}
    assert full["model.stages.head.photometric._target_"].endswith("RegionWeightedMSE")
    assert configs["audio_spatial"]["conditioning._target_"].endswith("AudioSpatial")


def test_lokitalk_table2_has_the_papers_rows_columns_and_numbers() -> None:
    spec = load_table_spec("lokitalk_table2")
    assert [r.label for r in spec.rows] == ["O+D+R", "O+D", "O"]
    assert {r.label: r.where["conditioning"] for r in spec.rows} == {v: k for k, v in LOKITALK_ROWS.items()}
    assert [c.metric for c in spec.columns] == ["psnr", "lpips", "lmd", "lmd_e", "sync_conf", "cond_gap_mouth", "cond_gap_eyes"]
    assert spec.paper["O"] == {"PSNR": 28.125, "LPIPS": 0.074, "LMD": 3.592, "Sync": 3.410}


@pytest.mark.slow
def test_lokitalk_ablation_smoke_trains_every_row_and_builds_table2(data_dir: Path, tmp_path: Path) -> None:
    """The grid through the entry point at TINY sizes: one run per row, scored by the one evaluator (the
    eye gap for the rows with an eye signal, "–" for O), and lokitalk_table2.md written when it ends."""
    runs = tmp_path / "runs"
    proc = subprocess.run(
        [sys.executable, "-m", "talker.fit", "experiment=lokitalk_ablation", *TINY, f"paths.data_dir={data_dir}", f"paths.runs_dir={runs}"],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = build_table(collect_runs(runs), "lokitalk_table2")
    for row in ("O", "O+D", "O+D+R"):
        assert table.cells[(row, "PSNR")].n == 1 and table.cells[(row, "Cond. gap")].n == 1, row
    assert table.cells[("O", "Eye gap")].mean is None  # no eye signal: no value, not 0
    assert table.cells[("O+D", "Eye gap")].n == 1 and table.cells[("O+D+R", "Eye gap")].n == 1
    written = (runs / "lokitalk_ablation" / "lokitalk_table2.md").read_text()
    assert written == table.markdown()
    o_row = next(line for line in written.splitlines() if line.startswith(("| O |", "| O‡ |")))
    assert o_row.split("|")[-3].strip() == "–"  # the eye-gap cell, before the run count
