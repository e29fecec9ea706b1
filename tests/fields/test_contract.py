"""Every head field in configs/field/ satisfies the Field contract (R2-Talker's HeadField, ER-NeRF's field),
and every system in configs/system/ (LokiTalk included) builds a field and strategy pair that keeps it.

A new field YAML is picked up automatically by the parametrisation; it is built at the sizes the
smoke tests use (tests/conftest.py TINY) and fed every kind of conditioning a strategy can produce.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import hydra
import pytest
import torch
from omegaconf import OmegaConf

from talker.conditioning import Conditioning, ConditioningSpec
from talker.config import compose_config, group_options, instantiate
from talker.data.frames import FrameConditions
from talker.data.layout import Split, load_split
from talker.encoders import LevelEncoder
from talker.fields import EYE, Field
from talker.head.model import TalkingHead

from ..conftest import TINY

FIELDS = group_options("field")
SPEC = ConditioningSpec(vector_dim=6, spatial_dim=5)


def build(name: str, seed: int = 0) -> Field:
    cfg = compose_config([f"field={name}", *(o for o in TINY if o.startswith("field."))])
    torch.manual_seed(seed)
    field = hydra.utils.instantiate(cfg.field)(cond_spec=SPEC)
    with torch.no_grad():  # a trained grid's magnitude, so that gated inputs pass something through
        for module in field.encoder.modules():
            if hasattr(module, "embeddings"):
                module.embeddings.normal_(0, 0.5)
    return field


def shift(offset: float):
    """A warp that moves every point by ``offset`` along each axis and reports the move."""
    return lambda x: (x + offset, {"moved": torch.full_like(x[:, 0], offset)})


def conditioning(field: Field, code: float = 1.0) -> Conditioning:
    """Every part a strategy may fill: a vector, per-point spatial features, per-layer scale and shift,
    a warp of the points."""
    widths = field.modulation_widths
    gen = torch.Generator().manual_seed(1)
    return Conditioning(
        vector=torch.full((SPEC.vector_dim,), code),
        spatial=lambda x, pos: (code * torch.tanh(pos[:, : SPEC.spatial_dim] + x[:, :1]), {}),
        scales=[0.1 * code * torch.randn(w, generator=gen) for w in widths],
        shifts=[0.1 * code * torch.randn(w, generator=gen) for w in widths],
        warp=shift(0.05 * code),
    )


@pytest.fixture(scope="module")
def frames(tiny_clip: Path):
    """Per-frame inputs of two training frames (landmark and audio windows, and the frame index)."""
    split = load_split(tiny_clip, "train")
    return [{**FrameConditions().of_split(split, i), "index": i} for i in (0, 4)]


def points(n: int = 96, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, generator=gen) * 1.6 - 0.8
    return x, torch.nn.functional.normalize(torch.randn(n, 3, generator=gen), dim=-1)


def test_every_field_yaml_is_covered() -> None:
    assert {"head", "er_nerf"} <= set(FIELDS)


@pytest.mark.parametrize("name", FIELDS)
def test_the_field_declares_its_positional_encoder(name: str) -> None:
    """The module masks levels of ``field.encoder`` and a spatial strategy reads its features: the
    contract says so, so every field must hold a level encoder whose width is ``position_dim``."""
    field = build(name)
    assert isinstance(field.encoder, LevelEncoder), type(field.encoder)
    assert field.position_dim == field.encoder.output_dim and field.bound == field.encoder.bound


@pytest.mark.parametrize("name", FIELDS)
def test_outputs_have_the_contract_shapes_and_ranges(name: str, frames) -> None:
    field = build(name)
    x, d = points()
    cond = conditioning(field)
    out = field(x, d, cond, frames[0])
    assert out.sigma.shape == (96,) and out.rgb.shape == (96, 3)
    assert torch.all(out.sigma >= 0) and torch.isfinite(out.sigma).all()
    assert torch.all((out.rgb > 0) & (out.rgb < 1))
    assert all(v.shape[0] == 96 for v in out.extras.values())
    torch.testing.assert_close(field.density(x, cond, frames[0]), out.sigma)
    conds = [cond, conditioning(field, code=-1.0)]
    expected = torch.stack([field.density(x, c, f) for c, f in zip(conds, frames)])
    torch.testing.assert_close(field.densities(x, conds, frames), expected)
    assert set(field.frame_keys) <= set(frames[0])


@pytest.mark.parametrize("name", FIELDS)
def test_gradients_reach_every_parameter(name: str, frames) -> None:
    field = build(name).train()
    x, d = points(256)
    out = field(x, d, conditioning(field), frames[0])
    loss = out.rgb.sum() + out.sigma.mean() + sum(v.sum() for v in out.extras.values())
    loss.backward()
    silent = [n for n, p in field.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    # Individual codes of frames that were not rendered get no gradient, by design.
    silent = [n for n in silent if not n.endswith("codes")]
    assert not silent, f"{name}: no gradient reaches {silent}"


@pytest.mark.parametrize("name", FIELDS)
def test_deterministic_under_seed(name: str, frames) -> None:
    x, d = points(30)
    outs = [build(name, seed=123)(x, d, conditioning(build(name, seed=123)), frames[1]).rgb for _ in range(2)]
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)


@pytest.mark.parametrize("name", FIELDS)
def test_every_part_of_the_conditioning_reaches_the_output(name: str, frames) -> None:
    field = build(name)
    x, d = points()
    base = conditioning(field)
    variants = {
        "vector": Conditioning(vector=-base.vector, spatial=base.spatial, scales=base.scales, shifts=base.shifts),
        "spatial": Conditioning(vector=base.vector, spatial=lambda x, pos: (-base.spatial(x, pos)[0], {}), scales=base.scales, shifts=base.shifts),
        "scales": Conditioning(vector=base.vector, spatial=base.spatial, scales=[-s for s in base.scales], shifts=base.shifts),
        "warp": dataclasses.replace(base, warp=shift(-0.05)),
    }
    reference = field(x, d, base, frames[0]).rgb
    for part, cond in variants.items():
        assert (field(x, d, cond, frames[0]).rgb - reference).abs().max() > 1e-4, f"{name}: {part} has no effect"


@pytest.mark.parametrize("name", FIELDS)
def test_the_warp_moves_the_point_every_part_reads(name: str, frames) -> None:
    """A warped point is the point the field reads: ``warp(x) = x + t`` at ``x`` gives what no warp
    gives at ``x + t`` (density and colour), and the warp's values come back in the extras."""
    field = build(name)
    x, d = points()
    plain = conditioning(field)
    warped, unwarped = dataclasses.replace(plain, warp=shift(0.05)), dataclasses.replace(plain, warp=None)
    out = field(x, d, warped, frames[0])
    torch.testing.assert_close(out.rgb, field(x + 0.05, d, unwarped, frames[0]).rgb)
    torch.testing.assert_close(field.density(x, warped, frames[0]), field.density(x + 0.05, unwarped, frames[0]))
    torch.testing.assert_close(out.extras["moved"], torch.full((96,), 0.05))
    both = field.densities(x, [warped, unwarped], frames)
    torch.testing.assert_close(both, torch.stack([field.density(x, warped, frames[0]), field.density(x, unwarped, frames[1])]))


# --- Every system of configs/system pairs a field with a strategy: the pair keeps the contract -------

SYSTEMS = group_options("system")


def system_overrides(name: str) -> list[str]:
    """TINY's sizes, each where the system's config has the key (strategies differ in their keys)."""
    full = compose_config([f"system={name}"])
    return [o for o in TINY if OmegaConf.select(full, o.split("=", 1)[0], default=None) is not None]


def system_head(name: str, clip: Path) -> tuple[TalkingHead, Split, FrameConditions]:
    """System ``name``'s head at TINY sizes (seed 0), prepared on ``clip``'s training frames, with the
    split and the frame conditions it was prepared from."""
    cfg = compose_config([f"system={name}", *system_overrides(name)])
    torch.manual_seed(0)
    head = instantiate(cfg.model, "model").head
    split = load_split(clip, "train")
    conditions = FrameConditions(cfg.data.landmark_window, cfg.data.audio_window)
    if cfg.data.reference is not None:  # an ID encoder (system=lokitalk_id) reads the person's first frame
        conditions.use_references(split)
    head.prepare([conditions.of_split(split, i) for i in range(len(split))])
    return head, split, conditions


@pytest.mark.parametrize("name", SYSTEMS)
def test_every_system_pairs_its_field_and_strategy_within_the_contract(name: str, tiny_clip: Path) -> None:
    """The model a system builds (its field bound to its strategy, prepared on the training frames)
    renders points of two frames with the contract's shapes and ranges, its batched densities equal
    the single ones, gradient reaches every parameter, and the frame's condition changes the colour."""
    assert "lokitalk" in SYSTEMS
    head, split, conditions = system_head(name, tiny_clip)
    head.train()
    frames = [{**conditions.of_split(split, i), "index": i} for i in (0, 5)]
    x, d = points(256)
    params = [p for p in [*head.field.parameters(), *head.conditioning.parameters()]]
    opt = torch.optim.Adam(params, lr=1e-2)
    # Half-closed eyes for the parts that read the eye ratio: the tiny clip never blinks, and its
    # standardised eye ratio (LokiTalk's F_e) is 0, which carries no gradient.
    half_closed = {**frames[0], EYE: torch.tensor(0.15)}
    for step in range(2):  # zero-initialised output layers pass gradient on after the first step
        opt.zero_grad()
        out = head.field(x, d, head.condition(half_closed), half_closed)
        loss = out.rgb.sum() + out.sigma.mean() + sum(v.float().sum() for v in out.extras.values())
        loss.backward()
        if step == 0:
            opt.step()
    named = [*head.field.named_parameters("field."), *head.conditioning.named_parameters("conditioning.")]
    silent = [n for n, p in named if (p.grad is None or p.grad.abs().sum() == 0) and not n.endswith("codes")]
    assert not silent, f"system={name}: no gradient reaches {silent}"

    with torch.no_grad():  # trained magnitudes: the strategy off its zero layers, the grid (see build)
        gen = torch.Generator().manual_seed(2)
        for p in head.conditioning.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
        for module in head.field.encoder.modules():
            if hasattr(module, "embeddings"):
                module.embeddings.normal_(0, 0.5)
        conds = [head.condition(f) for f in frames]
        outs = [head.field(x, d, c, f) for c, f in zip(conds, frames)]
        for out, cond, frame in zip(outs, conds, frames):
            assert out.sigma.shape == (256,) and out.rgb.shape == (256, 3)
            assert torch.all(out.sigma >= 0) and torch.all((out.rgb > 0) & (out.rgb < 1))
            torch.testing.assert_close(head.field.density(x, cond, frame), out.sigma)
        expected = torch.stack([out.sigma for out in outs])
        torch.testing.assert_close(head.field.densities(x, conds, frames), expected)
        assert (outs[0].rgb - outs[1].rgb).abs().max() > 1e-6, f"system={name}: the condition does not reach the colour"
