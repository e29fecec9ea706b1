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
