"""The ablation grids change one axis at a time: every cell equals the reference cell elsewhere."""

from __future__ import annotations

from typing import Any

import pytest
from omegaconf import OmegaConf

from talker.config import check_overrides, compose_config

# The arm of each Table-4 row and the one config subtree it may change (None: the reference).
TABLE4_AXES = {
    "rad_nerf": "conditioning",
    "landmark_encoding": "conditioning.fusion",
    "maglo": None,
    "progressive": "schedule.levels",
}


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


def test_ablation_has_the_four_rows_of_table4() -> None:
    cells = check_overrides(["experiment=ablation"])
    arms = [o.split("=", 1)[1] for cell in cells for o in cell if o.startswith("arm=")]
    assert arms == list(TABLE4_AXES)


@pytest.mark.parametrize("arm", list(TABLE4_AXES))
def test_ablation_cell_differs_from_the_reference_only_on_its_axis(arm: str) -> None:
    reference = composed(["experiment=ablation", "arm=maglo"])
    cell = composed(["experiment=ablation", f"arm={arm}"])
    changed = differing(reference, cell)
    axis = TABLE4_AXES[arm]
    if axis is None:
        assert not changed
        return
    assert changed, f"arm={arm} composes the reference config"
    outside = sorted(k for k in changed if not (k == axis or k.startswith(axis + ".")))
    assert not outside, f"arm={arm} changes {outside} outside its axis {axis}"


def test_ablation_rows_build_what_the_paper_names() -> None:
    targets = {}
    for arm in TABLE4_AXES:
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


def test_baselines_grid_has_every_system_of_tables_1_and_2() -> None:
    from talker.config import group_options

    cells = check_overrides(["experiment=baselines"])
    assert [o.split("=", 1)[1] for cell in cells for o in cell if o.startswith("system=")] == SYSTEMS
    assert group_options("system") == sorted(SYSTEMS)  # _instant_ngp.yaml is a shared part, not a system


def test_baselines_experiment_shrinks_every_system_the_same_way() -> None:
    """The experiment states only what it changes, and changes the same keys of every system."""
    changed = {s: differing(composed([f"system={s}"]), composed(["experiment=baselines", f"system={s}"])) for s in SYSTEMS}
    assert changed["r2talker"], "experiment=baselines changes nothing"
    for system, keys in changed.items():
        assert keys == changed["r2talker"], system
        assert not any(k.startswith(("field.", "conditioning.")) for k in keys), sorted(keys)


def test_systems_are_what_the_paper_compares() -> None:
    rad, geneface, er, ours = (composed([f"system={s}"]) for s in ("rad_nerf", "geneface_pp", "er_nerf", "r2talker"))
    arm = composed(["arm=rad_nerf"])
    conditioning = lambda cfg: {k: v for k, v in cfg.items() if k.startswith("conditioning.")}  # noqa: E731
    # RAD-NeRF reuses Table 4's rad_nerf arm's conditioning modules unchanged.
    assert conditioning(rad) == conditioning(arm)
    # GeneFace++ dagger is RAD-NeRF's instant-NGP head and training with landmark (GLO) conditioning.
    outside = {k for k in differing(rad, geneface) if not k.startswith("conditioning.")}
    assert outside == {"method"} and geneface["conditioning._target_"].endswith("GloConcat")
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
    assert [g["weight_decay"] for g in er.configure_optimizers()["optimizer"].param_groups] == [0.01, 0.0]


def test_progressive_concat_is_the_progressive_axis_on_the_concat_row() -> None:
    """arm=progressive_concat tests the paper's claim that coarse-to-fine needs M-AGLO: it must be the
    concat row (landmark_encoding) with only the level schedule changed."""
    concat = composed(["experiment=ablation", "arm=landmark_encoding"])
    cell = composed(["experiment=ablation", "arm=progressive_concat"])
    changed = differing(concat, cell)
    assert changed and all(k.startswith("schedule.levels.") for k in changed), sorted(changed)
