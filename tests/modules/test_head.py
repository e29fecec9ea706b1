"""The head module on the engine: frustum marking, condition sweeps, per-frame field inputs."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch

from talker.config import compose_config, instantiate
from talker.encoders.hashgrid import hash_grids
from talker.fit import train
from talker.utils.checkpoints import load_checkpoint

from ..conftest import BASELINES_TINY

FIELD_INPUTS = [
    "field.density_inputs=[{_target_: talker.fields.EyeBlink}]",
    "field.color_inputs=[{_target_: talker.fields.IndividualCode, num_codes: 16, dim: 4}]",
]


def test_head_trains_with_eye_and_individual_codes_and_sweeps_all_conditions(tiny_overrides: list[str], tmp_path: Path) -> None:
    steps = 8  # occupancy updates at steps 2, 4, 6 with 2 conditions each (TINY: 9 training frames)
    cfg = compose_config(
        [*tiny_overrides, *FIELD_INPUTS, f"trainer.max_steps={steps}", "model.head.occupancy_conditions=2", "model.weight_decay=0"]
    )
    L.seed_everything(cfg.seed, verbose=False)  # as train() does before building: the initial codes
    initial = instantiate(cfg.model, "model").head.field.color_inputs[0].codes.detach().clone()
    run = train(cfg)
    ckpt = load_checkpoint(run / "checkpoints/last.ckpt")
    state = ckpt["state_dict"]
    codes = state["head.field.color_inputs.0.codes"]
    assert codes.shape == (16, 4)
    # One frame per step: the codes of the 8 frames drawn moved, no other code did.
    moved = (codes != initial).any(dim=1).nonzero().squeeze(-1).tolist()
    assert len(moved) == steps and max(moved) < 9
    grid = cfg.field.position_encoder
    assert state["head.field.sigma_net.layers.0.weight"].shape[1] == grid.num_levels * grid.level_dim + 1  # positions + eye
    assert state["head.sweep.batches"].item() == 3
    assert state["head.occupancy.frustum_marked"].item() and state["head.occupancy.seen"].float().mean() < 1.0
    assert (run / "metrics.json").is_file()


def test_a_strategy_with_its_own_learning_rate_gets_its_own_group(tiny_overrides: list[str]) -> None:
    cfg = compose_config([*tiny_overrides, "conditioning=audio_spatial", "conditioning.lr=5e-4", "model.lr_net=3e-3"])
    module = instantiate(cfg.model, "model")
    groups = {g["name"]: g for g in module.configure_optimizers()["optimizer"].param_groups}
    assert groups["conditioning"]["lr"] == 5e-4 and groups["net"]["lr"] == 3e-3
    ids = {name: {id(p) for p in g["params"]} for name, g in groups.items()}
    assert {id(p) for p in module.head.conditioning.audio_net.parameters()} <= ids["conditioning"]
    assert {id(p) for p in module.head.conditioning.fusion.ambient_net.parameters()} <= ids["conditioning"]
    assert id(module.head.conditioning.fusion.grid.embeddings) in ids["encoder"]  # hash tables stay with the encoders
    assert {id(p) for p in module.head.field.sigma_net.parameters()} <= ids["net"]
    assert sum(len(v) for v in ids.values()) == len(list(module.parameters()))  # each parameter in one group
    default = instantiate(compose_config([*tiny_overrides, "conditioning=landmark_hash"]).model, "model")
    assert [g["name"] for g in default.configure_optimizers()["optimizer"].param_groups] == ["encoder", "net"]


def test_run_folders_from_before_the_stages_still_load(tiny_overrides: list[str], tmp_path: Path) -> None:
    """A run folder written when HeadModule took its parts as one flat list of arguments (no model.head,
    model.stages, model.plan; state keys without ``head.``) loads into today's module unchanged."""
    from omegaconf import OmegaConf

    from talker.runs import RunFolder

    torso = [o for o in BASELINES_TINY if o.startswith("model.head.torso.")]
    cfg = compose_config([*tiny_overrides, "system=rad_nerf", "schedule.lips_start=2000", "schedule.torso_steps=2000", *torso])
    today = OmegaConf.to_container(cfg.model, resolve=True)
    head, plan, stages = today["head"], today["plan"], today["stages"]
    flat = {  # what talker.fit wrote into config.yaml before
        "_target_": today["_target_"], **{k: v for k, v in head.items() if k != "_target_"},
        "schedule_scale": plan["scale"], "lr_milestones": stages["head"]["lr_milestones"],
        "head_steps": plan["head_steps"], "lips_start": plan["lips_start"], "torso_steps": plan["torso_steps"],
        "opacity_weight": stages["head"]["opacity_weight"], "lpips_weight": 0.01, "lpips_weights": None,
        "lip_patch_every": 1, "optimizer": today["optimizer"], "lr_encoder": today["lr_encoder"], "lr_net": today["lr_net"],
        "weight_decay": today["weight_decay"],
        "lr_schedule": {"_target_": "talker.schedules.ExponentialDecay", "head": 0.1, "lips": 0.05, "torso": 0.1},
    }
    torch.manual_seed(0)
    module = instantiate(cfg.model, "model")
    run = tmp_path / "old"
    (run / "checkpoints").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create({**OmegaConf.to_container(cfg, resolve=True), "model": flat}), run / "config.yaml")
    flat_state = {key.removeprefix("head."): value for key, value in module.state_dict().items()}
    torch.save({"state_dict": flat_state, "global_step": 0}, run / "checkpoints" / "last.ckpt")

    loaded = RunFolder(run).load_module()
    assert loaded.plan == module.plan and loaded.head.torso is not None
    for key, value in module.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0, msg=key)
    assert loaded.plan.stages == ("head", "lips", "torso")
    for step in range(6):  # head, lips and torso steps of the plan: the same learning rates
        assert loaded.lr_factor(step) == module.lr_factor(step), step
    assert loaded.stages["lips"].patch_every == 1


def test_the_fused_optimiser_trains_as_the_plain_one(tiny_overrides: list[str]) -> None:
    """model.fused_optimizer=true (the default) against false: the same model, batches and
    steps give the same losses and parameters up to float32 rounding (measured: below 1e-6
    relative after 4 steps; asserted within 1e-5, while a 1% change of the update fails)."""
    from talker.stages.base import StepContext

    def train_steps(fused: bool) -> tuple[list[float], list[torch.Tensor]]:
        cfg = compose_config([*tiny_overrides, f"model.fused_optimizer={str(fused).lower()}"])
        L.seed_everything(cfg.seed, verbose=False)
        module = instantiate(cfg.model, "model")
        datamodule = instantiate(cfg.data, "data")
        datamodule.prepare_data()  # generates the tiny clip on first use
        datamodule.setup("fit")
        optimizer = module.configure_optimizers()["optimizer"]
        assert all(group.get("fused") is (True if fused else None) for group in optimizer.param_groups)
        batches = iter(datamodule.train_dataloader())
        losses = []
        for step in range(4):
            ctx = StepContext(step=step, plan=module.plan, log=lambda *args, **kwargs: None)
            loss = module.stages["head"].training_step(module.head, next(batches), ctx)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return losses, [p.detach() for p in module.parameters()]

    (eager, eager_params), (fast, fast_params) = train_steps(False), train_steps(True)
    torch.testing.assert_close(fast, eager, rtol=1e-5, atol=0)
    for a, b in zip(fast_params, eager_params):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_compile_lookup_compiles_every_hash_grid_of_the_head(tiny_overrides: list[str]) -> None:
    """model.compile_lookup=true reaches every hash grid of the head (positional and landmark grids);
    the default leaves them eager. That compiled lookups give the eager encodings and table gradients is
    tests/encoders/test_hashgrid.py::test_compiled_lookups_give_the_eager_encodings_and_gradients."""
    for enabled in (False, True):
        cfg = compose_config([*tiny_overrides, f"model.compile_lookup={str(enabled).lower()}"])
        module = instantiate(cfg.model, "model")
        grids = hash_grids(module.head)
        assert len(grids) >= 2 and all(grid._compiled is enabled for grid in grids)


def test_the_occupancy_update_gives_the_grid_of_the_plain_densities(tiny_overrides: list[str], monkeypatch) -> None:
    """Occupancy updates evaluate each condition's density with the frame folded into the sigma net
    (``FrameHead.density``: no geometry feature, no per-point modulation); two updates (every seen
    cell, then occupied cells, neighbours and a lottery) give the grid that the plain per-condition
    ``field.density`` gives, up to float32 rounding (measured: 1.5e-6 relative; asserted within 1e-5,
    while dropping the conditions' shifts, scaling them by 1.001 or reading the wrong output row fails), the same occupied cells, and the fast
    path is the one taken."""
    from talker.fields.base import Field
    from talker.fields.head import FrameHead, HeadField

    cfg = compose_config([*tiny_overrides, "model.head.occupancy_conditions=4"])
    datamodule = instantiate(cfg.data, "data")
    datamodule.prepare_data()
    datamodule.setup("fit")
    conditions = datamodule.train_conditions()

    def grids(densities) -> tuple[torch.Tensor, torch.Tensor]:
        torch.manual_seed(0)
        head = instantiate(cfg.model, "model").head
        head.prepare(conditions)
        with torch.no_grad():  # trained magnitudes: densities that differ by cell and by condition
            for p in [*head.conditioning.parameters(), *head.field.sigma_net.parameters()]:
                p.add_(torch.randn_like(p) * 0.3)
            head.field.encoder.embeddings.normal_(0, 1.0)
        monkeypatch.setattr(HeadField, "densities", densities)
        torch.manual_seed(1)  # the cells' jitter and the lottery
        for _ in range(2):
            head.update_occupancy(conditions)
        return head.occupancy.values.clone(), head.occupancy.occupied.clone()

    calls = []
    folded = FrameHead.density
    monkeypatch.setattr(FrameHead, "density", lambda self, *a, **k: calls.append(1) or folded(self, *a, **k))
    fast_values, fast_occupied = grids(HeadField.densities)
    taken = len(calls)
    assert taken > 0, "the occupancy update did not take the folded density path"
    plain_values, plain_occupied = grids(Field.densities)  # stacks field.density(x, cond, frame)
    assert len(calls) == taken
    assert 0 < plain_occupied.float().mean() < 0.9 and plain_values.std() > 0.1 * plain_values.mean()
    torch.testing.assert_close(fast_values, plain_values, rtol=1e-5, atol=0)
    assert torch.equal(fast_occupied, plain_occupied)
