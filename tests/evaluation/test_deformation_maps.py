"""Deformation heat maps (LokiTalk, Fig. 5): sum_i w_i ||dx_i|| per pixel, zero for the identity warp,
non-zero where the head is for a moved one, in the map of the offset that moved."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from talker.evaluation.deformation import composited_norms, deformation_maps, heat_map_image
from talker.head.model import TalkingHead

from .test_condition_gap import untrained_head


def test_composited_norms_weight_each_sample_by_its_render_weight() -> None:
    weights = torch.tensor([[0.5, 0.25, 0.0], [0.0, 0.0, 0.0]])
    dx = torch.zeros(2, 3, 3)
    dx[0, 0] = torch.tensor([3.0, 4.0, 0.0])  # |.| = 5
    dx[0, 1] = torch.tensor([0.0, 0.0, -2.0])  # |.| = 2
    dx[0, 2] = torch.tensor([100.0, 0.0, 0.0])  # weight 0: does not count
    dx[1, 0] = torch.tensor([1.0, 0.0, 0.0])  # a ray that shows nothing
    out = composited_norms(weights, {"dx": dx}, ("dx",))["dx"]
    assert out.tolist() == [0.5 * 5 + 0.25 * 2, 0.0]


def lokitalk_head(data_dir: Path, *overrides: str) -> tuple[TalkingHead, dict]:
    """An untrained TINY LokiTalk head (identity warp) with a positional grid of trained magnitude, and
    its first held-out frame."""
    head, datamodule = untrained_head(data_dir, "system=lokitalk", *overrides)
    with torch.no_grad():
        head.field.encoder.embeddings.normal_(0, 0.5)
    head.eval()
    return head, datamodule.eval_frames()[0]


def test_the_identity_warp_gives_all_zero_maps(data_dir: Path) -> None:
    head, item = lokitalk_head(data_dir)
    maps = deformation_maps(head, item)
    assert list(maps) == ["dx_face", "dx_torso"] and maps["dx_face"].shape == item["image"].shape[:2]
    assert not maps["dx_face"].any() and not maps["dx_torso"].any()
    assert not heat_map_image(maps).any()


@pytest.mark.parametrize("moved, still", [("face", "torso"), ("torso", "face")])
def test_a_constant_offset_maps_to_its_length_times_the_opacity_in_its_own_map(data_dir: Path, moved: str, still: str) -> None:
    """Only one field's last bias set: its map is |b| x the pixel's opacity (non-zero exactly where the
    head is), the other field's map stays zero."""
    head, item = lokitalk_head(data_dir)
    bias = torch.tensor([0.02, -0.01, 0.0])
    with torch.no_grad():
        getattr(head.conditioning.fusion, moved).last.bias.copy_(bias)
        grid = head.occupancy  # the half of the box below y = 0 is empty: its pixels show nothing
        for cascade in range(grid.num_cascades):
            centres = grid.cell_centers(cascade, torch.arange(grid.occupied.shape[1]))
            grid.occupied[cascade, centres[:, 1] < 0] = False
    maps = deformation_maps(head, item)
    opacity = head.render_frame(item).opacity.view(item["image"].shape[:2])
    empty = opacity == 0
    assert empty.any() and opacity.gt(0.1).any()  # pixels that show the head and pixels that show nothing
    assert torch.allclose(maps[f"dx_{moved}"], bias.norm() * opacity, atol=1e-4)
    assert not maps[f"dx_{moved}"][empty].any() and maps[f"dx_{moved}"][~empty].min() > 0
    assert not maps[f"dx_{still}"].any()


def test_a_head_without_a_warp_has_no_maps(data_dir: Path) -> None:
    head, item = lokitalk_head(data_dir, "conditioning=landmark_hash")
    assert deformation_maps(head, item) == {}
