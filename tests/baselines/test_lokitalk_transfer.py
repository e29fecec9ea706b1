"""LokiTalk's ID-aware knowledge transfer (talker.baselines.lokitalk.transfer): the ID encoder reaches the
deformation fields and the canonical field, two people get different last layers, fine-tuning turns the
first frame's embedding into a parameter and drops the encoder, and pre-training then fine-tuning runs
through talker.fit."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import hydra
import pytest
import torch

from talker.baselines.lokitalk import IdAwareDeformation, IdAwareSignals
from talker.baselines.lokitalk.deformation import DX_FACE
from talker.config import compose_config
from talker.data.frames import FrameConditions
from talker.data.layout import Split, load_split
from talker.errors import ConfigError
from talker.fields import EYE, HeadField

from ..conftest import TINY


def build(split: Split, seed: int = 0) -> tuple[IdAwareSignals, HeadField, FrameConditions]:
    """conditioning=lokitalk_id at TINY sizes, bound to a small head field, prepared on ``split``, and the
    frame conditions with ``split``'s reference crops."""
    cfg = compose_config(["system=lokitalk_id", *TINY])
    torch.manual_seed(seed)
    strategy = hydra.utils.instantiate(cfg.conditioning)
    field = hydra.utils.instantiate(cfg.field)(cond_spec=strategy.spec)
    strategy.bind(field.modulation_widths, field.position_dim)
    conditions = FrameConditions()
    conditions.use_references(split)
    strategy.prepare([conditions.of_split(split, i) for i in range(len(split))])
    return strategy, field, conditions


@pytest.fixture(scope="module")
def split(tiny_clip: Path) -> Split:
    return load_split(tiny_clip, "train")


def fusion_of(strategy: IdAwareSignals) -> IdAwareDeformation:
    assert isinstance(strategy.fusion, IdAwareDeformation)
    return strategy.fusion


def moved(module: torch.nn.Module, seed: int = 5) -> None:
    """Give every parameter a trained magnitude (the zero heads included)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.1)


def points(n: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(n, 3, generator=gen) * 1.2 - 0.6
    return x, torch.nn.functional.normalize(torch.randn(n, 3, generator=gen), dim=-1)


def test_a_new_model_is_the_plain_cascade_and_every_identity_part_learns(split: Split, ) -> None:
    """Zero heads: the warp starts at the identity whatever the person; after one step gradient reaches
    the encoder and every head (hyper-network, offset, dynamic and static features)."""
    strategy, field, conditions = build(split)
    x, d = points()
    cond = strategy(conditions.of_split(split, 0))
    warped, values = cond.warp(x)
    assert torch.equal(warped, x) and not values[DX_FACE].any()
    assert cond.vector is not None and cond.vector.shape == (fusion_of(strategy).static_dim,)

    opt = torch.optim.Adam([*strategy.parameters(), *field.parameters()], lr=1e-2)
    target = torch.rand(len(x), 3, generator=torch.Generator().manual_seed(4))
    for step in range(2):
        opt.zero_grad()
        # Half-closed eyes: the tiny clip never blinks, its own standardised F_e is 0 (no gradient).
        out = field(x, d, strategy({**conditions.of_split(split, step), EYE: torch.tensor(0.15)}))
        ((out.rgb - target) ** 2).mean().add(out.sigma.mean()).backward()
        if step == 0:
            opt.step()
    silent = [n for n, p in strategy.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not silent, f"no gradient reaches {silent}"
    assert strategy.encoder is not None and strategy.encoder.out.weight.grad.abs().sum() > 0


def test_two_people_get_different_last_layers_offsets_and_static_features(split: Split) -> None:
    strategy, _, conditions = build(split)
    moved(strategy)
    fusion = fusion_of(strategy)
    inputs = conditions.of_split(split, 0)
    other_person = {**inputs, "reference": 1 - inputs["reference"]}  # another face crop
    z_a, z_b = strategy.identity(inputs), strategy.identity(other_person)
    assert (z_a - z_b).abs().max() > 1e-4
    a, b = fusion.last_layers(z_a), fusion.last_layers(z_b)
    for name in ("face", "torso"):
        assert a[name][0].shape == fusion.face.last.weight.shape
        assert (a[name][0] - b[name][0]).abs().max() > 1e-4, name
    assert (fusion.offset(z_a) - fusion.offset(z_b)).abs().max() > 1e-4
    assert (strategy(inputs).vector - strategy(other_person).vector).abs().max() > 1e-4
    # The same person's driving signals with another person's crop move the points differently.
    x, _ = points()
    assert (strategy(inputs).warp(x)[0] - strategy(other_person).warp(x)[0]).abs().max() > 1e-5


def test_fine_tuning_starts_from_the_first_frame_and_drops_the_encoder(split: Split) -> None:
    strategy, _, conditions = build(split)
    moved(strategy)
    first = conditions.of_split(split, 0)
    expected = strategy.identity(first).detach()
    h_before = strategy.encode(first).detach()
    assert strategy.param_groups(1e-3, 0.0, set()) == []  # before: its networks train in the model's net group

    strategy.begin_fine_tuning(first)
    assert strategy.encoder is None and bool(strategy.adopted)
    assert strategy.embedding is not None and torch.equal(strategy.embedding.detach(), expected)
    assert not any(name.startswith("encoder.") for name, _ in strategy.named_parameters())
    without_reference = {k: v for k, v in first.items() if k != "reference"}
    torch.testing.assert_close(strategy.encode(without_reference), h_before)  # z no longer read from a crop
    groups = strategy.param_groups(1e-3, 0.0, set())
    assert [g["name"] for g in groups] == ["identity"] and groups[0]["params"] == [strategy.embedding]
    assert groups[0]["lr"] == strategy.id_lr == 1e-3

    # A fine-tuned head's checkpoint loads into a model built from the same config (with an encoder).
    fresh, _, _ = build(split, seed=1)
    fresh.load_state_dict(strategy.state_dict())
    assert fresh.encoder is None
    torch.testing.assert_close(fresh.encode(without_reference), h_before)


def test_the_encoder_needs_a_reference_crop(split: Split) -> None:
    strategy, _, conditions = build(split)
    inputs = {k: v for k, v in conditions.of_split(split, 0).items() if k != "reference"}
    with pytest.raises(KeyError, match="data.reference"):
        strategy.encode(inputs)


# --- Through talker.fit: pre-training on several people, then a new person from it or from scratch ---

# TINY for data=multi_identity: a person's own keys sit under data.base (data.num_rays, which quickstart
# sets, is given to every person from data).
MULTI_TINY = [o.replace("data.", "data.base.") if o.startswith(("data.synthetic.", "data.val_frames")) else o for o in TINY]


@pytest.mark.slow
def test_transfer_experiment_pretrains_then_fine_tunes_and_trains_from_scratch(data_dir: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    pretrain = ["experiment=lokitalk_pretrain", *MULTI_TINY, "data.identities=[bo,cy]", f"paths.data_dir={data_dir}"]
    proc = subprocess.run(
        [sys.executable, "-m", "talker.fit", "experiment=lokitalk_transfer", *TINY, f"paths.data_dir={data_dir}",
         f"paths.runs_dir={runs}", "callbacks.history.every_n_train_steps=3", "needs.pretrain.overrides=[" + ",".join(f"'{o}'" for o in pretrain) + "]"],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    from talker.utils.checkpoints import load_checkpoint

    states = {}
    for cell in ("init_from=null", "init_from=pretrain"):
        [run] = (runs / "lokitalk_transfer").glob(cell + ",*")  # cell folders lead with the grid's axis
        assert json.loads((run / "metrics.json").read_text())["metrics"]["psnr"] > 0
        assert len(list((run / "checkpoints").glob("step=*.ckpt"))) >= 1  # the curve's checkpoints
        states[cell] = load_checkpoint(run / "checkpoints" / "last.ckpt")["state_dict"]
    pretrained = load_checkpoint(runs / "lokitalk_pretrain" / "checkpoints" / "last.ckpt")["state_dict"]
    scratch, tuned = states["init_from=null"], states["init_from=pretrain"]
    assert not bool(scratch["head.conditioning.adopted"]) and "head.conditioning.embedding" not in scratch
    assert bool(tuned["head.conditioning.adopted"]) and tuned["head.conditioning.embedding"].abs().sum() > 0
    assert not any(".conditioning.encoder." in k for k in tuned) and any(".conditioning.encoder." in k for k in pretrained)
    # The pre-training's statistics came along (the fine-tuning never recomputes them).
    torch.testing.assert_close(tuned["head.conditioning.mean"], pretrained["head.conditioning.mean"])
    assert not torch.equal(scratch["head.conditioning.mean"], pretrained["head.conditioning.mean"])

    # benchmarks/transfer_curve.py: both runs at step 0 (rebuilt as talker.fit began them), at the kept
    # step 3 and at the last step 4.
    cells = [str(next((runs / "lokitalk_transfer").glob(c + ",*"))) for c in ("init_from=null", "init_from=pretrain")]
    proc = subprocess.run(
        [sys.executable, "benchmarks/transfer_curve.py", *cells, "--frames", "1", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=Path(__file__).parents[2],
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader((tmp_path / "transfer_curve.csv").open()))
    assert [(r["run"].split(",")[0], int(r["step"])) for r in rows] == [
        (cell, step) for cell in ("init_from=null", "init_from=pretrain") for step in (0, 3, 4)
    ]
    start = {r["run"].split(",")[0]: float(r["psnr"]) for r in rows if r["step"] == "0"}
    assert start["init_from=pretrain"] != start["init_from=null"]  # the pre-trained start is not a fresh model
    assert (tmp_path / "transfer_curve.png").stat().st_size > 0 and "reaches it at step" in proc.stdout


def test_init_from_a_run_of_other_sizes_fails_in_one_line(data_dir: Path, tmp_path: Path) -> None:
    from talker.fit import train

    source = train(compose_config([
        "system=lokitalk_id", *TINY, f"paths.data_dir={data_dir}", f"run_dir={tmp_path / 'source'}",
        "trainer.max_steps=1", "callbacks.evaluation=null",
    ]))
    with pytest.raises(ConfigError, match=r"^init_from=.*source: its weights do not fit this model"):
        train(compose_config([
            "system=lokitalk_id", *TINY, f"paths.data_dir={data_dir}", f"run_dir={tmp_path / 'other'}",
            "trainer.max_steps=1", "callbacks.evaluation=null", "field.hidden_dim=8", f"init_from={source}",
        ]))
