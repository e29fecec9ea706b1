"""Every strategy in configs/conditioning/ satisfies the ConditioningStrategy contract.

A new strategy YAML is picked up automatically by the parametrisation.
"""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
import torch

from talker.conditioning import Conditioning, ConditioningStrategy
from talker.conditioning.audio_spatial import AMBIENT
from talker.conditioning.base import RenderedRays
from talker.config import compose_config, group_options
from talker.data.frames import FrameConditions
from talker.data.landmarks import RAY_REGIONS
from talker.data.layout import Split, load_split
from talker.encoders import HashGrid
from talker.fields import EYE, HeadField

STRATEGIES = group_options("conditioning")


def frame_conditions(window: int, split: Split) -> FrameConditions:
    """The split's conditions with its reference crops (strategies with an ID encoder read them, the
    others ignore them)."""
    conditions = FrameConditions(window)
    conditions.use_references(split)
    return conditions


def build(name: str, split: Split | None = None, seed: int = 0) -> tuple[ConditioningStrategy, HeadField, int]:
    """A strategy bound to a small field; prepared on ``split``'s training conditions when given."""
    cfg = compose_config([f"conditioning={name}"])
    torch.manual_seed(seed)
    strategy = hydra.utils.instantiate(cfg.conditioning)
    grid = HashGrid(input_dim=3, num_levels=4, level_dim=2, base_resolution=8, log2_hashmap_size=12, desired_resolution=64)
    field = HeadField(grid, cond_spec=strategy.spec, hidden_dim=16, geo_feat_dim=15, hidden_dim_color=16)
    strategy.bind(field.modulation_widths, field.position_dim)
    window = cfg.data.landmark_window
    if split is not None:
        conditions = frame_conditions(window, split)
        strategy.prepare([conditions.of_split(split, i) for i in range(len(split))])
    return strategy, field, window


@pytest.fixture(scope="module")
def split(tiny_clip: Path) -> Split:
    return load_split(tiny_clip, "train")


@pytest.fixture(scope="module")
def inputs(split: Split):
    return lambda window, i=0: frame_conditions(window, split).of_split(split, i)


def test_every_strategy_yaml_is_covered() -> None:
    assert {"audio_spatial", "glo_concat", "landmark_hash", "landmark_hash_concat", "landmark_spatial", "lokitalk", "region_attention"} <= set(STRATEGIES)


@pytest.mark.parametrize("name", STRATEGIES)
def test_output_matches_spec(name: str, split: Split, inputs) -> None:
    strategy, field, window = build(name, split)
    cond = strategy(inputs(window))
    assert isinstance(cond, Conditioning)
    spec = strategy.spec
    if spec.vector_dim:
        assert cond.vector is not None and cond.vector.shape == (spec.vector_dim,)
    else:
        assert cond.vector is None
    if cond.scales:
        assert [s.shape[-1] for s in cond.scales] == field.modulation_widths
        assert [s.shape[-1] for s in cond.shifts] == field.modulation_widths
    conditioned = cond.vector is not None or cond.scales or cond.spatial is not None or cond.warp is not None
    assert conditioned, "a strategy must condition something"
    x = torch.rand(64, 3) * 2 - 1
    d = torch.nn.functional.normalize(torch.randn(64, 3), dim=-1)
    out = field(x, d, cond)
    assert out.sigma.shape == (64,) and out.rgb.shape == (64, 3)


@pytest.mark.parametrize("name", STRATEGIES)
def test_gradients_reach_every_parameter(name: str, split: Split, inputs) -> None:
    strategy, field, window = build(name, split)
    params = list(strategy.parameters()) + list(field.parameters())
    opt = torch.optim.Adam(params, lr=1e-2)
    x = torch.rand(256, 3) * 1.6 - 0.8
    d = torch.nn.functional.normalize(torch.randn(256, 3), dim=-1)
    target = torch.rand(256, 3)
    # Zero-initialised output layers pass gradient on only after the first step.
    for step in range(2):
        opt.zero_grad()
        # Half-closed eyes for the parts that read the eye ratio: the tiny clip never blinks, and a
        # standardised eye ratio (LokiTalk's F_e) of a clip that never blinks is 0, which carries no gradient.
        out = field(x, d, strategy({**inputs(window, step), EYE: torch.tensor(0.15)}))
        ((out.rgb - target) ** 2).mean().add(out.sigma.mean()).backward()
        opt.step() if step == 0 else None
    silent = [n for n, p in strategy.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not silent, f"{name}: no gradient reaches {silent}"


@pytest.mark.parametrize("name", STRATEGIES)
def test_deterministic_under_seed(name: str, split: Split, inputs) -> None:
    outs = []
    for _ in range(2):
        strategy, field, window = build(name, split, seed=123)
        cond = strategy(inputs(window))
        x = torch.linspace(-0.5, 0.5, 30).view(10, 3)
        outs.append(field(x, torch.nn.functional.normalize(x + 1, dim=-1), cond).rgb)
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)


@pytest.mark.parametrize("name", STRATEGIES)
def test_condition_changes_the_field(name: str, split: Split, inputs) -> None:
    strategy, field, window = build(name, split)
    with torch.no_grad():  # move the zero-initialised output layers off zero
        for p in strategy.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        # ... and give the positional grid a trained grid's magnitude: a fusion that gates the code by
        # the positional features (ER-NeRF's region attention) passes next to nothing through 1e-4.
        field.encoder.embeddings.normal_(0, 0.5)
    x = torch.rand(128, 3) * 1.6 - 0.8
    d = torch.nn.functional.normalize(torch.randn(128, 3), dim=-1)
    a = field(x, d, strategy(inputs(window, 0))).rgb
    b = field(x, d, strategy(inputs(window, 5))).rgb
    # A cut condition path gives exactly equal colours; the audio codes start close together (the
    # references' default initialisation: codes of norm ~0.5 differing by ~0.02 between frames).
    assert (a - b).abs().max() > 1e-6


@pytest.mark.parametrize("name", STRATEGIES)
def test_prepared_state_travels_in_the_state_dict(name: str, split: Split, inputs) -> None:
    """What ``prepare`` computed from the data is restored by a checkpoint (exact resume)."""
    prepared, field, window = build(name, split, seed=7)
    fresh, _, _ = build(name, seed=8)
    fresh.load_state_dict(prepared.state_dict())
    x = torch.rand(32, 3) * 1.6 - 0.8
    d = torch.nn.functional.normalize(torch.randn(32, 3), dim=-1)
    for i in (0, 3):
        torch.testing.assert_close(field(x, d, fresh(inputs(window, i))).rgb, field(x, d, prepared(inputs(window, i))).rgb)


def rendered(
    values: dict[str, torch.Tensor], mask: torch.Tensor, weights: torch.Tensor, exempt: torch.Tensor,
    transmittance: torch.Tensor | None = None,
) -> RenderedRays:
    """Per-point values of the evaluated samples (in evaluation order) laid out as a render returns them;
    ``exempt`` flags the rays of every region a regulariser may exempt."""
    grids = {}
    for name, value in values.items():
        grid = value.new_zeros(*mask.shape, *value.shape[1:])
        grids[name] = grid.index_put(mask.nonzero(as_tuple=True), value)
    light = torch.ones_like(weights) if transmittance is None else transmittance
    return RenderedRays(mask, weights * mask, light, grids, {name: exempt for name in RAY_REGIONS})


def field_values(strategy, field, window: int, inputs, n: int) -> dict[str, torch.Tensor]:
    x = torch.rand(n, 3) * 1.6 - 0.8
    return field(x, torch.nn.functional.normalize(x, dim=-1), strategy(inputs(window))).extras


@pytest.mark.parametrize("name", STRATEGIES)
def test_regularization_is_a_finite_scalar_or_none(name: str, split: Split, inputs) -> None:
    strategy, field, window = build(name, split)
    values = field_values(strategy, field, window, inputs, 64)
    strategy.on_train_step(1e9)  # past any ramp
    mask = torch.ones(8, 8, dtype=torch.bool)
    reg = strategy.regularization(rendered(values, mask, torch.rand(8, 8), torch.rand(8) > 0.5))
    if reg is not None:
        assert reg.ndim == 0 and torch.isfinite(reg) and reg >= 0 and reg.requires_grad


def test_ambient_regularizer_reaches_the_ambient_net(split: Split, inputs) -> None:
    strategy, field, window = build("audio_spatial", split)
    values = field_values(strategy, field, window, inputs, 64)
    strategy.on_train_step(1e9)
    mask = torch.ones(8, 8, dtype=torch.bool)
    strategy.regularization(rendered(values, mask, torch.rand(8, 8), torch.zeros(8, dtype=torch.bool))).backward()
    assert strategy.fusion.ambient_net.layers[0].weight.grad.abs().sum() > 0


def test_ambient_regularizer_is_rad_nerfs(split: Split, inputs) -> None:
    """RAD-NeRF's form by hand: per ray the UNWEIGHTED sum of |ambient|_1 over the samples reached by
    at least 1e-4 of the light, averaged over all the rays, lower-face rays counting 0, ramped in."""
    strategy, field, window = build("audio_spatial", split)
    fusion = strategy.fusion
    values = field_values(strategy, field, window, inputs, 5)  # the evaluated samples of 3 rays
    ambient = values[AMBIENT].detach().abs().sum(-1)
    mask = torch.tensor([[True, True], [True, False], [True, True]])  # evaluation order: row by row
    weights = torch.tensor([[0.5, 0.25], [1.0, 0.0], [0.5, 0.5]])  # must not matter
    light = torch.tensor([[1.0, 0.5], [1.0, 1.0], [1.0, 5e-5]])  # ray 2's second sample: marching stopped
    exempt = torch.tensor([False, True, False])
    rays = rendered(values, mask, weights, exempt, light)
    expected = (ambient[0] + ambient[1] + ambient[3]) / 3
    strategy.on_train_step(fusion.ramp_steps)
    torch.testing.assert_close(strategy.regularization(rays).detach(), fusion.weight * expected)
    strategy.on_train_step(fusion.ramp_steps / 4)
    torch.testing.assert_close(strategy.regularization(rays).detach(), fusion.weight * expected / 4)
    assert fusion.weight == 0.1 and fusion.exempt == "lower_face"  # RAD-NeRF's --lambda_amb, its face rect
    only_face = RenderedRays(rays.mask, rays.weights, rays.transmittance, rays.values, {"face": exempt})
    with pytest.raises(KeyError, match="lower_face"):
        strategy.regularization(only_face)  # a batch without the flag is named, not silently unexempted
    inside = rendered(values, mask, weights, torch.ones(3, dtype=torch.bool))
    assert strategy.regularization(inside).item() == 0.0  # the audio may move everything in the lower face


def test_wrong_audio_shape_names_the_config_keys(split: Split, inputs) -> None:
    strategy, _, _ = build("audio_spatial")
    audio = inputs(5)["audio"]
    assert audio.shape == (8, 16, 80)  # aud_mel.npy windows of the 8 neighbouring frames
    with pytest.raises(ValueError, match="conditioning.feature_dim must match data.audio_features"):
        strategy({"audio": audio[..., :29]})


def test_wrong_landmark_shape_is_a_clear_error(inputs) -> None:
    strategy, _, window = build("landmark_hash")
    bad = {"landmarks": inputs(window)["landmarks"][:, :60]}
    with pytest.raises(ValueError, match=r"expects landmarks of shape \(5, 68, 3\)"):
        strategy(bad)
    with pytest.raises(KeyError, match="landmarks"):
        strategy({})
