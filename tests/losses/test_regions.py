"""LokiTalk's region losses (talker.losses.regions) against hand computations."""

from __future__ import annotations

import pytest
import torch

from talker.conditioning.base import RenderedRays
from talker.losses import MSE, RegionWeightedMSE, attention_regularization, region_regularization
from talker.rendering import RenderOutput

# Three rays of two samples; ray 1's second sample was not evaluated (evaluation order: row by row).
MASK = torch.tensor([[True, True], [True, False], [True, True]])
WEIGHTS = torch.tensor([[0.5, 0.25], [1.0, 0.0], [0.2, 0.8]])


def rays(values: dict[str, torch.Tensor], regions: dict[str, list[bool]]) -> RenderedRays:
    """The render of :data:`MASK` with per-sample ``values [5, ...]`` and per-ray region flags."""
    grids = {}
    for name, value in values.items():
        grid = value.new_zeros(*MASK.shape, *value.shape[1:])
        grids[name] = grid.index_put(MASK.nonzero(as_tuple=True), value)
    flags = {name: torch.tensor(flag) for name, flag in regions.items()}
    return RenderedRays(MASK, WEIGHTS * MASK, torch.ones(3, 2), grids, flags)


def test_region_regulariser_is_zero_inside_and_the_weighted_magnitude_outside() -> None:
    # Samples in evaluation order: ray 0 (a, b), ray 1 (c), ray 2 (d, e). |(3, 4, 0)| = 5.
    dx_face = torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, 2.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    dx_torso = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    values = {"dx_face": dx_face, "dx_torso": dx_torso}
    pairs = {"dx_face": "face", "dx_torso": "torso"}
    everywhere = rays(values, {"face": [True] * 3, "torso": [True] * 3})
    assert region_regularization(everywhere, pairs).item() == 0.0
    # Per ray, sum_i w_i |dx_i|: face (0.5*5 + 0.25*2, 1*1, 0.2*0 + 0.8*1) = (3, 1, 0.8);
    # torso (0.5*1, 0, 0.2*2) = (0.5, 0, 0.4).
    # Ray 0 outside the face, ray 2 outside the torso: (3 + 0.4) / 3 rays.
    partly = rays(values, {"face": [False, True, True], "torso": [True, True, False]})
    assert region_regularization(partly, pairs).item() == pytest.approx(3.4 / 3)
    # Outside both everywhere: (3 + 1 + 0.8 + 0.5 + 0 + 0.4) / 3.
    nowhere = rays(values, {"face": [False] * 3, "torso": [False] * 3})
    assert region_regularization(nowhere, pairs).item() == pytest.approx(5.7 / 3)


def test_attention_regulariser_by_hand() -> None:
    """Eq. 8-9: sum over signals of the composited score on the rays outside the signal's region."""
    audio = torch.tensor([0.2, 0.4, 1.0, 0.5, 0.5])
    eye = torch.tensor([1.0, 0.0, 0.3, 0.1, 0.6])
    regions = {"mouth": [True, False, False], "eyes": [False, True, True]}
    r = rays({"attention_audio": audio, "attention_eye": eye}, regions)
    # Composited: audio (0.5*0.2 + 0.25*0.4, 1.0, 0.2*0.5 + 0.8*0.5) = (0.2, 1.0, 0.5);
    # eye (0.5*1 + 0, 0.3, 0.2*0.1 + 0.8*0.6) = (0.5, 0.3, 0.5).
    # audio outside the mouth: rays 1, 2 -> 1.5; eye outside the eyes: ray 0 -> 0.5. Mean over 3 rays each.
    got = attention_regularization(r, {"attention_audio": "mouth", "attention_eye": "eyes"})
    assert got.item() == pytest.approx(1.5 / 3 + 0.5 / 3)
    inside = rays({"attention_audio": audio}, {"mouth": [True] * 3})
    assert attention_regularization(inside, {"attention_audio": "mouth"}).item() == 0.0


def test_a_region_the_batch_lacks_is_named() -> None:
    r = rays({"dx_face": torch.ones(5, 3)}, {"face": [True] * 3})
    with pytest.raises(KeyError, match=r"'torso'.*only \['face'\]"):
        region_regularization(r, {"dx_face": "torso"})


def render(rgb: torch.Tensor) -> RenderOutput:
    n = rgb.shape[0]
    return RenderOutput(rgb=rgb, depth=torch.zeros(n), opacity=torch.ones(n))


def test_region_weighted_mse_by_hand() -> None:
    """Eq. 6 as a mean over rays: w_r e_r, w the largest weight of the ray's regions, 1 elsewhere."""
    pred = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.0, 0.0, 0.0]])
    target = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.3], [0.5, 0.5, 0.5], [0.6, 0.0, 0.0]])
    # Per-ray errors: (1, 0.03, 0, 0.12). Ray 0 in the eyes (x4), ray 1 in the mouth (x2), ray 3 in
    # both (the larger, x4), ray 2 in neither.
    regions = {"eyes": torch.tensor([True, False, False, True]), "mouth": torch.tensor([False, True, False, True])}
    loss = RegionWeightedMSE({"eyes": 4.0, "mouth": 2.0})
    got = loss(render(pred), target, 0.5, regions=regions)
    assert got.item() == pytest.approx((4 * 1 + 2 * 0.03 + 0 + 4 * 0.12) / 4)
    assert set(loss.terms) == {"rgb_region_weighted"}
    plain = RegionWeightedMSE({"eyes": 1.0, "mouth": 1.0})(render(pred), target, 0.5, regions=regions)
    torch.testing.assert_close(plain, MSE()(render(pred), target, 0.5))
    with pytest.raises(KeyError, match="'eyes'"):
        loss(render(pred), target, 0.5, regions={"mouth": regions["mouth"]})
    with pytest.raises(ValueError, match="weights"):
        RegionWeightedMSE({"eyes": 0.0})
