"""LokiTalk's cascaded deformation fields (talker.baselines.lokitalk): identity at the start,
trained by the photometric loss, each signal routed to the field the paper gives it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import hydra
import pytest
import torch

from talker.baselines.lokitalk import CascadedDeformation, RegionSignals
from talker.baselines.lokitalk.deformation import DX_FACE, DX_TORSO, EYE_STD_FLOOR, attention_key
from talker.config import compose_config
from talker.data.frames import FrameConditions
from talker.data.landmarks import RAY_REGIONS
from talker.data.layout import Split, load_split
from talker.fields import EYE, HeadField, eye_aspect_ratio, eye_ratio
from talker.losses.regions import attention_regularization, region_regularization

from ..conditioning.test_contract import rendered
from ..conftest import TINY


def build(split: Split, seed: int = 0, overrides: tuple[str, ...] = ()) -> tuple[RegionSignals, HeadField]:
    """conditioning=lokitalk at TINY sizes, bound to a small head field, prepared on ``split``."""
    cfg = compose_config(["system=lokitalk", *TINY, *overrides])
    torch.manual_seed(seed)
    strategy = hydra.utils.instantiate(cfg.conditioning)
    field = hydra.utils.instantiate(cfg.field)(cond_spec=strategy.spec)
    strategy.bind(field.modulation_widths, field.position_dim)
    strategy.prepare([FrameConditions().of_split(split, i) for i in range(len(split))])
    return strategy, field


@pytest.fixture(scope="module")
def split(tiny_clip: Path) -> Split:
    return load_split(tiny_clip, "train")


def frame(split: Split, i: int) -> dict[str, torch.Tensor]:
    return FrameConditions().of_split(split, i)


def points(n: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(n, 3, generator=gen) * 1.2 - 0.6
    return x, torch.nn.functional.normalize(torch.randn(n, 3, generator=gen), dim=-1)


def deformation(strategy: RegionSignals) -> CascadedDeformation:
    assert isinstance(strategy.fusion, CascadedDeformation)
    return strategy.fusion


def test_both_deformations_start_at_the_identity_and_the_photometric_loss_trains_them(split: Split) -> None:
    strategy, field = build(split)
    fusion = deformation(strategy)
    x, d = points()
    cond = strategy(frame(split, 0))
    warped, values = cond.warp(x)
    assert torch.equal(warped, x)  # x' = x + 0 + 0 exactly
    assert not values[DX_FACE].any() and not values[DX_TORSO].any()

    params = [*strategy.parameters(), *field.parameters()]
    opt = torch.optim.Adam(params, lr=1e-2)
    target = torch.rand(128, 3, generator=torch.Generator().manual_seed(4))
    for step in range(2):  # the zero last layers pass gradient on to the rest after the first step
        opt.zero_grad()
        # Half-closed eyes: the tiny clip never blinks, so its own standardised F_e is exactly 0 and
        # would carry no gradient to the eye's attention.
        out = field(x, d, strategy({**frame(split, step), EYE: torch.tensor(0.15)}))
        ((out.rgb - target) ** 2).mean().add(out.sigma.mean()).backward()
        if step == 0:
            # Through the canonical field's encoding of x' (the hash grid's interpolation weights).
            assert fusion.face.last.weight.grad.abs().sum() > 0 and fusion.torso.last.weight.grad.abs().sum() > 0
            opt.step()
    silent = [n for n, p in strategy.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not silent, f"no gradient reaches {silent}"
    _, values = strategy(frame(split, 0)).warp(x)
    assert values[DX_FACE].abs().max() > 0 and values[DX_TORSO].abs().max() > 0


def moved(strategy: RegionSignals, seed: int = 5) -> None:
    """Give every parameter a trained magnitude (the zero last layers included)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in strategy.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.1)


def test_each_signal_drives_the_field_the_paper_gives_it(split: Split) -> None:
    """The pose moves only the torso deformation; the landmarks and the eye ratio move the face
    deformation, and through it (eq. 4) the torso's."""
    strategy, _ = build(split)
    moved(strategy)
    x, _ = points()
    base = frame(split, 0)
    _, ref = strategy(base).warp(x)

    posed = {**base, "pose": frame(split, 5)["pose"]}
    assert not torch.equal(posed["pose"], base["pose"])
    _, values = strategy(posed).warp(x)
    torch.testing.assert_close(values[DX_FACE], ref[DX_FACE], rtol=0, atol=0)
    assert (values[DX_TORSO] - ref[DX_TORSO]).abs().max() > 1e-5

    closed = base["landmarks"].clone()
    closed[:, [37, 38, 43, 44], 1] = closed[:, [41, 40, 47, 46], 1]  # the upper lids onto the lower: shut
    centre = base["landmarks"].shape[0] // 2
    assert eye_aspect_ratio(closed[centre]) < eye_aspect_ratio(base["landmarks"][centre])
    _, values = strategy({**base, "landmarks": closed}).warp(x)
    assert (values[DX_FACE] - ref[DX_FACE]).abs().max() > 1e-5
    assert (values[DX_TORSO] - ref[DX_TORSO]).abs().max() > 1e-5  # the torso follows the face


def test_the_eye_ratio_reaches_the_face_deformation_by_itself(split: Split) -> None:
    """F_e is the frame's eye aspect ratio and an input of its own: the same landmark code with another
    eye ratio moves the face deformation, through the eye's attention only."""
    strategy, _ = build(split)
    moved(strategy)
    fusion = deformation(strategy)
    x, _ = points()
    inputs = frame(split, 0)
    h = strategy.encode(inputs)
    eye = fusion.signals["audio"]  # F_e follows F_a in h_cond
    centre = inputs["landmarks"][inputs["landmarks"].shape[0] // 2]
    own = (eye_aspect_ratio(centre) - strategy.eye_mean) / strategy.eye_std  # the frame's own, standardised
    assert h[eye].item() == pytest.approx(own.item())
    other = h.clone()
    other[eye] += 1.0
    _, a = fusion.deform(x, fusion.split(h))
    _, b = fusion.deform(x, fusion.split(other))
    assert (a[DX_FACE] - b[DX_FACE]).abs().max() > 1e-5
    torch.testing.assert_close(a[attention_key("audio")], b[attention_key("audio")], rtol=0, atol=0)
    assert (a[attention_key("eye")] - b[attention_key("eye")]).abs().max() > 0


def test_a_standardised_eye_ratio_is_scaled_by_the_training_frames(split: Split) -> None:
    """``standardise_eye``: F_e is (ratio - mean) / std of the training frames' ratios, the std floored;
    a given ``eye`` (the eye condition gap's swap) goes through the same scaling."""
    strategy, _ = build(split)  # standardised by default
    eye = deformation(strategy).signals["audio"]
    ratios = torch.cat([eye_ratio(frame(split, i)) for i in range(len(split))])
    mean, std = ratios.mean(), ratios.std(unbiased=False).clamp_min(EYE_STD_FLOOR)
    for i in (0, len(split) - 1):
        assert strategy.encode(frame(split, i))[eye].item() == pytest.approx(((ratios[i] - mean) / std).item())
    closed = strategy.encode({**frame(split, 0), "eye": torch.tensor([0.0])})[eye].item()
    assert closed == pytest.approx((-mean / std).item()) and closed < -5  # 0.3 / 0.03 units from the open eye
    plain, _ = build(split, overrides=("conditioning.standardise_eye=false",))
    assert "eye_mean" in strategy.state_dict() and "eye_mean" not in plain.state_dict()  # old runs keep loading
    assert plain.encode(frame(split, 0))[eye].item() == pytest.approx(ratios[0].item())  # F_e as it is


def test_the_last_layers_can_be_supplied_from_outside(split: Split) -> None:
    """What ID-aware transfer's hyper-network needs: ``deform(..., last=...)`` uses the given last
    layers instead of the fields' own."""
    strategy, _ = build(split)
    moved(strategy)
    fusion = deformation(strategy)
    x, _ = points()
    signals = fusion.split(strategy.encode(frame(split, 0)))
    own_x, own = fusion.deform(x, signals)
    given = {name: (mlp.last.weight.detach().clone(), mlp.last.bias.detach().clone())
             for name, mlp in (("face", fusion.face), ("torso", fusion.torso))}
    torch.testing.assert_close(fusion.deform(x, signals, given)[0], own_x)
    zeros = {name: (torch.zeros_like(w), torch.zeros_like(b)) for name, (w, b) in given.items()}
    assert torch.equal(fusion.deform(x, signals, zeros)[0], x)  # zero supplied layers: the identity
    assert fusion.face.last_shape == (3, fusion.hidden_dim) and own[DX_FACE].shape == (128, 3)


def test_the_regulariser_is_eq_7_plus_eq_8_9_with_the_configured_weights(split: Split) -> None:
    strategy, field = build(split)
    moved(strategy)
    fusion = deformation(strategy)
    x, d = points(12)
    values = field(x, d, strategy(frame(split, 0))).extras
    mask = torch.ones(4, 3, dtype=torch.bool)
    weights = torch.rand(4, 3, generator=torch.Generator().manual_seed(6))
    rays = rendered(values, mask, weights, torch.tensor([True, False, True, False]))
    expected = fusion.region_weight * region_regularization(rays, {DX_FACE: "face", DX_TORSO: "torso"})
    expected = expected + fusion.attention_weight * attention_regularization(
        rays, {attention_key("audio"): "mouth", attention_key("eye"): "eyes", attention_key("pose"): "torso"}
    )
    reg = strategy.regularization(rays)
    torch.testing.assert_close(reg, expected)
    assert reg > 0 and reg.requires_grad
    inside = rendered(values, mask, weights, torch.ones(4, dtype=torch.bool))
    assert strategy.regularization(inside).item() == 0.0  # every ray inside every region: nothing to penalise
    assert {"face", "torso", "mouth", "eyes"} <= set(RAY_REGIONS)


def test_a_pose_of_the_wrong_shape_is_named(split: Split) -> None:
    strategy, _ = build(split)
    with pytest.raises(ValueError, match=r"pose of shape \(1, 4, 4\)"):
        strategy({**frame(split, 0), "pose": torch.eye(4)})
    with pytest.raises(KeyError, match="pose"):
        strategy({"landmarks": frame(split, 0)["landmarks"]})


# A torso stage of 2 steps with a tiny torso field, as the stage tests shrink it.
TINY_TORSO = ["schedule.torso_steps=2000", "model.head.torso.grid.num_levels=2", "model.head.torso.grid.log2_hashmap_size=10",
              "model.head.torso.hidden_dim=8", "model.head.torso.deform_hidden=8"]


def test_system_lokitalk_smoke_trains_and_is_scored(tiny_overrides: list[str]) -> None:
    """``system=lokitalk`` at TINY sizes: 4 head steps (region-weighted MSE + the strategy's region and
    attention regularisers), 2 torso steps, then the evaluator scores it like every other system."""
    from tensorboard.util.tensor_util import make_ndarray

    from talker.fit import train
    from talker.utils.checkpoints import load_checkpoint

    from ..callbacks.tb_views import load_events

    run = train(compose_config(["system=lokitalk", *tiny_overrides, *TINY_TORSO]))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["global_step"] == 6 and "psnr" in metrics["metrics"] and "cond_gap_mouth" in metrics["metrics"]
    events = load_events(run / "tb")
    logged = lambda tag: [float(make_ndarray(e.tensor_proto)) for e in events.Tensors(tag)]
    regulariser = logged("train/loss_conditioning")[:4]  # the head steps' (eq. 7 + 8-9; attention ~0.5 at first)
    assert len(regulariser) == 4 and all(v > 0 and math.isfinite(v) for v in regulariser)
    assert len(logged("train/loss_rgb_region_weighted")) >= 4
    state = load_checkpoint(run / "checkpoints" / "last.ckpt")["state_dict"]
    for name in ("face", "torso"):  # both deformation fields left the identity
        assert state[f"head.conditioning.fusion.{name}.last.weight"].abs().sum() > 0
    assert state["head.conditioning.pose_std"].ne(1).any() and bool(state["head.torso_trained"])
    # The deformation heat maps (Fig. 5): a PNG per validation and at the end, and TensorBoard images.
    assert list((run / "deformation").glob("step*_frame*.png")) and list((run / "deformation").glob("final_frame*.png"))
    assert {"deformation/dx_face", "deformation/dx_torso", "deformation/dx_face_mean"} <= set(events.Tags()["tensors"])


@pytest.mark.slow
def test_lpips_joins_in_the_last_fifth_on_a_patch_of_the_image_without_restarting_the_rate(
    tiny_overrides: list[str], alexnet_file: Path
) -> None:
    """Sec. 4: lambda_lpips = 0 for the first 80 % of the steps, 5e-3 after; the lips stage carries it on
    with the region-weighted MSE, on a patch anywhere in the frame, at the head's decayed rate."""
    from talker.config import instantiate
    from talker.fit import train
    from talker.losses import RegionWeightedMSE

    from ..modules.test_stages import scalars

    full = compose_config(["system=lokitalk", *tiny_overrides, "schedule.head_steps=240000", "schedule.scale=0.01",
                           "schedule.torso_steps=0"])
    module = instantiate(full.model, "model")
    assert [module.stage(s) for s in (1919, 1920, 2399)] == ["head", "lips", "lips"]  # 192K of 240K
    assert [module.lr_factor(s) for s in (1799, 1800, 1919, 1920, 2399)] == pytest.approx([0.1, 0.01, 0.01, 0.01, 0.01])
    lips = module.stages["lips"]
    assert isinstance(lips.photometric, RegionWeightedMSE) and lips.lpips_weight == 5e-3
    assert full.data.patch_region == "frame"

    run = train(compose_config([
        "system=lokitalk", *tiny_overrides, "schedule.torso_steps=0", "schedule.lips_start=2000",
        f"model.stages.lips.lpips_weights={alexnet_file}",
    ]))
    assert list(scalars(run, "train/loss_lpips")) == [3]  # lips stage: steps 2, 3; the patch every other step
    assert sorted(scalars(run, "train/loss_rgb_region_weighted")) == [0, 1, 2, 3]  # eq. 6 on both stages


def test_the_unified_deformation_is_one_field_of_every_signal_without_regions(split: Split) -> None:
    """Table 2's O+D (conditioning=lokitalk_unified): the identity at the start, one offset ``dx`` that
    every signal (landmark code, eye ratio, pose) moves, and no region regulariser."""
    from talker.baselines.lokitalk import UnifiedDeformation
    from talker.baselines.lokitalk.deformation import DX

    cfg = compose_config(["system=lokitalk", "conditioning=lokitalk_unified", *TINY])
    torch.manual_seed(0)
    strategy = hydra.utils.instantiate(cfg.conditioning)
    field = hydra.utils.instantiate(cfg.field)(cond_spec=strategy.spec)
    strategy.bind(field.modulation_widths, field.position_dim)
    strategy.prepare([frame(split, i) for i in range(len(split))])
    fusion = strategy.fusion
    assert isinstance(fusion, UnifiedDeformation) and fusion.torso is None and fusion.deformations == (DX,)
    x, _ = points()
    warped, values = strategy(frame(split, 0)).warp(x)
    assert torch.equal(warped, x) and set(values) == {DX}
    with torch.no_grad():
        fusion.face.last.weight.normal_(0, 0.1)
    base = frame(split, 0)
    dx = strategy(base).warp(x)[1][DX]
    shut = {**base, "eye": torch.tensor(0.0)}
    turned = {**base, "pose": frame(split, len(split) - 1)["pose"]}
    other_mouth = {**base, "landmarks": frame(split, len(split) // 2)["landmarks"], "eye": eye_aspect_ratio(base["landmarks"][2])}
    for changed in (shut, turned, other_mouth):
        assert not torch.allclose(strategy(changed).warp(x)[1][DX], dx)
    mask = torch.ones(4, 2, dtype=torch.bool)
    assert strategy.regularization(rendered({DX: torch.ones(8, 3)}, mask, torch.ones(4, 2), torch.zeros(4, dtype=torch.bool))) is None


def test_attention_scores_stay_off_saturation_whatever_the_signals_scale() -> None:
    """The logit is sqrt(dim) * cos(q, k): a signal grown a thousandfold (as the landmark code grew under
    the attention regulariser with a dot-product logit) still gives scores inside sigmoid(+-sqrt(dim))
    with a gradient."""
    from talker.baselines.lokitalk import SignalAttention

    torch.manual_seed(0)
    attention = SignalAttention(position_dim=8, signal_dim=5, dim=16)
    pos, signal = torch.randn(64, 8), torch.randn(5)
    bound = torch.sigmoid(torch.tensor(4.0)).item()
    for scale in (1.0, 1e3):
        grown = (signal * scale).requires_grad_()
        _, score = attention(pos, grown)
        assert score.min() >= 1 - bound - 1e-6 and score.max() <= bound + 1e-6
        score.sum().backward()
        assert grown.grad.abs().sum() > 0


def test_a_normalised_trunk_cannot_die_and_the_plain_one_loads_as_before() -> None:
    """Every trunk pre-activation pushed far below zero (as the photometric loss pushed the face field's
    second layer): the plain ReLU trunk has no unit on and no gradient reaches it; with
    ``layer_norm`` every point still has units on and the trunk's first layer gets a gradient.
    The plain trunk computes what it computed before the option (``relu(trunk(x))``), so runs made
    before it load as they were trained."""
    from talker.baselines.lokitalk.deformation import DeformationMLP

    torch.manual_seed(0)
    x = torch.randn(256, 12)
    plain, normalised = DeformationMLP(12, 16), DeformationMLP(12, 16, layer_norm=True)
    normalised.load_state_dict(plain.state_dict())
    assert torch.equal(plain.hidden(x), torch.relu(plain.trunk(x)))
    for mlp in (plain, normalised):
        with torch.no_grad():
            for layer in mlp.trunk.layers:
                layer.bias.fill_(-10.0)
            mlp.last.weight.fill_(0.1)
    assert (plain.hidden(x) > 0).sum() == 0
    on = (normalised.hidden(x) > 0).float().mean(-1)
    assert on.min() > 0.1, "a point with every unit off"
    for mlp, reaches in ((plain, False), (normalised, True)):
        mlp(x).pow(2).sum().backward()
        grad = mlp.trunk.layers[0].weight.grad
        assert (grad is not None and grad.abs().sum() > 0) == reaches


def test_a_silu_trunk_keeps_its_gradient_where_the_relu_trunk_died() -> None:
    """The dead face trunk's state, read off its step-200 checkpoint: the second layer's pre-activations
    at -0.126 +- 0.058 over the face (here -0.13 +- 0.03, all below zero). There the ReLU trunk passes
    nothing and gets no gradient; the SiLU trunk (``activation="silu"``) still varies with the point and
    its first layer gets at least a tenth of the gradient it had at the start (26 % here: the second
    layer's weights were scaled down to 15 %). An unknown activation is a one-line error naming the config key."""
    from talker.baselines.lokitalk.deformation import DeformationMLP

    torch.manual_seed(0)
    x = torch.randn(256, 12)
    relu, silu = DeformationMLP(12, 16), DeformationMLP(12, 16, activation="silu")
    silu.load_state_dict(relu.state_dict())

    def first_layer_grad(mlp: DeformationMLP) -> float:
        mlp.zero_grad()
        mlp(x).pow(2).sum().backward()
        return float(mlp.trunk.layers[0].weight.grad.norm())

    for mlp in (relu, silu):
        with torch.no_grad():
            mlp.last.weight.fill_(0.1)
    at_start = first_layer_grad(silu)
    for mlp in (relu, silu):
        with torch.no_grad():
            second = mlp.trunk.layers[1]
            second.weight.mul_(0.15)  # what stays of the point's influence around the shift
            second.bias.fill_(-0.126)
    assert float((relu.trunk.layers[1](torch.relu(relu.trunk.layers[0](x))) < 0).float().mean()) == 1.0
    assert (relu.hidden(x) > 0).sum() == 0 and first_layer_grad(relu) == 0
    assert silu.hidden(x).std(0).min() > 0, "a SiLU unit that no longer varies with the point"
    assert first_layer_grad(silu) > 0.1 * at_start
    with pytest.raises(ValueError, match="conditioning.fusion.activation='tanh'"):
        DeformationMLP(12, 16, activation="tanh")
