"""The three training stages of the one head module: boundaries from the schedule, LPIPS, torso."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from talker.config import compose_config, instantiate
from talker.fit import train
from talker.losses import PerceptualWeightsMissing
from talker.metrics.perceptual import ALEXNET_FILE
from talker.utils.checkpoints import load_checkpoint

from ..callbacks.tb_views import load_events

torchvision = pytest.importorskip("torchvision")
pytest.importorskip("lpips")
pytestmark = pytest.mark.filterwarnings("ignore:.*(pretrained|weight enum).*:UserWarning")

# TINY: head_steps=4000 at scale 0.001 -> 4 steps. Lips from step 2, torso for 2 more steps.
STAGES = ["schedule.lips_start=2000", "schedule.torso_steps=2000", "model.head.torso.grid.num_levels=2",
          "model.head.torso.grid.log2_hashmap_size=10", "model.head.torso.hidden_dim=8", "model.head.torso.deform_hidden=8",
          "data.lip_patch=32"]  # AlexNet needs 32 px or more: the whole tiny frame



def scalars(run: Path, tag: str) -> dict[int, float]:
    from tensorboard.util.tensor_util import make_ndarray

    return {e.step: float(make_ndarray(e.tensor_proto)) for e in load_events(run / "tb").Tensors(tag)}


def test_stage_boundaries_and_learning_rate_follow_the_schedule_scale(tiny_overrides: list[str]) -> None:
    cfg = compose_config([*tiny_overrides, "schedule.head_steps=240000", "schedule.scale=0.01",
                          "schedule.lips_start=200000", "schedule.torso_steps=100000", *STAGES[2:]])
    assert cfg.trainer.max_steps == 2400 + 1000
    module = instantiate(cfg.model, "model")
    stages = {step: module.stage(step) for step in (0, 1999, 2000, 2399, 2400, 3399)}
    assert stages == {0: "head", 1999: "head", 2000: "lips", 2399: "lips", 2400: "torso", 3399: "torso"}
    factors = [module.lr_factor(s) for s in (0, 1499, 1500, 1799, 1800, 1999, 2000, 2399)]
    assert factors == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01, 1, 1])  # x0.1, x0.01, reset at lips
    # The torso stage repeats the head's shape over its own length: drops at 150K/240K and 180K/240K of it.
    assert [module.lr_factor(2400 + s) for s in (0, 624, 625, 750)] == pytest.approx([1, 1, 0.1, 0.01])


def test_missing_lpips_weights_fail_at_fit_start_naming_the_file(tiny_overrides: list[str], tmp_path: Path) -> None:
    cfg = compose_config([*tiny_overrides, "schedule.lips_start=2000", "trainer.max_steps=4"])
    with pytest.raises(PerceptualWeightsMissing, match=ALEXNET_FILE) as info:
        train(cfg)
    assert str(Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE) in str(info.value)
    assert not (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()  # nothing trained, nothing lost
    # A run that ends before the lips stage does not need the weights.
    train(compose_config([*tiny_overrides, "schedule.lips_start=2000", "trainer.max_steps=2"]))


@pytest.mark.slow
def test_lips_then_torso_stage(tiny_overrides: list[str], tmp_path: Path, alexnet_file: Path) -> None:
    overrides = [*tiny_overrides, *STAGES, f"model.stages.lips.lpips_weights={alexnet_file}"]
    run = train(compose_config([*overrides, "trainer.max_steps=4"]))  # head (0, 1), lips (2, 3)
    head_end = load_checkpoint(run / "checkpoints/last.ckpt")["state_dict"]
    lpips = scalars(run, "train/loss_lpips")
    assert list(lpips) == [3]  # every other step of the lips stage renders the lip patch
    assert all(v > 0 for v in lpips.values())
    assert scalars(run, "train/stage") == {0: 0.0, 1: 0.0, 2: 1.0, 3: 1.0}
    assert not bool(head_end["head.torso_trained"])

    run = train(compose_config([*overrides, "trainer.max_steps=6"]))  # resumes into the torso stage
    final = load_checkpoint(run / "checkpoints/last.ckpt")["state_dict"]
    frozen = [k for k in head_end if k.startswith(("head.field.", "head.conditioning.", "head.occupancy."))]
    assert frozen and all(torch.equal(head_end[k], final[k]) for k in frozen), "the head moved in the torso stage"
    torso = [k for k in final if k.startswith("head.torso.") and final[k].is_floating_point()]
    assert any(not torch.equal(final[k], head_end[k]) for k in torso), "the torso field did not train"
    assert bool(final["head.torso_trained"])
    assert (run / "metrics.json").is_file()  # evaluation rendered the head over the learned torso


def test_divergence_fails_naming_the_learning_rates(tiny_overrides: list[str]) -> None:
    cfg = compose_config(tiny_overrides)
    datamodule = instantiate(cfg.data, "data")
    datamodule.prepare_data()
    datamodule.setup("fit")
    module = instantiate(cfg.model, "model")
    with torch.no_grad():
        module.head.field.color_net.layers[-1].weight.fill_(float("nan"))  # what a too-large step leaves
    batch = datamodule.train_dataloader().batches.sample(0)
    with pytest.raises(FloatingPointError, match="model.lr_net=.*model.lr_encoder="):
        module.training_step(batch, 0)
