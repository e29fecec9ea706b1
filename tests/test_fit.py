"""End to end: every experiment trains on a tiny clip through the real entry point; runs resume."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf

from talker.config import compose_config, group_options, run_folder
from talker.evaluation import evaluate_run
from talker.fit import run_dir_as_hydra_dir, train
from talker.utils.checkpoints import load_checkpoint

from .conftest import TINY

RUN_FILES = ("config.yaml", "checkpoints/last.ckpt", "metrics.json", "frames.csv", "mouth_strip.png", "speed.json", ".hydra/config.yaml")


def assert_complete_run(run: Path) -> dict:
    for name in RUN_FILES:
        assert (run / name).is_file(), f"{run}: {name} missing"
    assert list((run / "tb").glob("events.out.tfevents.*")), f"{run}: no TensorBoard events"
    assert list((run / "renders").glob("*.png"))
    metrics = json.loads((run / "metrics.json").read_text())
    assert math.isfinite(metrics["metrics"]["psnr"]) and metrics["num_frames"] > 0
    return metrics


def assert_hparams_view(run: Path) -> None:
    """Through the real entry point the hparams view shows the config choices with the final metrics."""
    from .callbacks.tb_views import assert_hparams_view_has_final_metrics

    assert_hparams_view_has_final_metrics(run / "tb", "conditioning", "schedule", "seed")


def head_experiments() -> list[str]:
    """Experiments that train the head stage (the motion stage has its own smoke test in tests/modules;
    experiment=baselines, whose cells are different systems, and LokiTalk's transfer pair, whose
    pre-training reads several people, have theirs in tests/baselines)."""
    own_smoke = {"baselines", "lokitalk_pretrain", "lokitalk_transfer"}
    return [
        e for e in group_options("experiment")
        if compose_config([f"experiment={e}"]).model._target_.endswith("HeadModule") and e not in own_smoke
    ]


@pytest.mark.slow
@pytest.mark.parametrize("experiment", head_experiments())
def test_smoke_train_every_experiment(experiment: str, data_dir: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    proc = subprocess.run(
        [sys.executable, "-m", "talker.fit", f"experiment={experiment}", *TINY, f"paths.data_dir={data_dir}", f"paths.runs_dir={runs}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    cells = check_cells(experiment)
    runs_of_experiment = sorted(p.parent for p in runs.rglob("metrics.json"))
    assert len(runs_of_experiment) == len(cells), runs_of_experiment
    for run in runs_of_experiment:
        assert_complete_run(run)
        assert_hparams_view(run)
        assert not run.name.isdigit(), "run folders are named by overrides, not job numbers"
    if len(cells) > 1:
        names = {run.name for run in runs_of_experiment}
        for cell in cells:
            swept = [o for o in cell if o.split("=")[0] in ("conditioning", "schedule")]
            assert any(all(o in name for o in swept) for name in names), (cell, names)
    assert "tensorboard --logdir" in proc.stderr + proc.stdout
    if experiment == "ablation":  # the grid's run folders are what Table 4 is built from
        from talker.reporting import build_table, collect_runs

        table = build_table(collect_runs(runs), "table4")
        for row in ("RAD-NeRF", "+ Landmark encoding", "+ M-AGLO", "+ Progressive optimization"):
            assert table.cells[(row, "PSNR")].n == 1, row
        assert (runs / "ablation" / "table4.md").read_text() == table.markdown()  # written when the grid ended
    if experiment == "level_dim":
        from talker.reporting import build_table, collect_runs

        table = build_table(collect_runs(runs), "table8")
        assert [table.cells[(row, "PSNR")].n for row in ("2", "4", "8")] == [1, 1, 1]
        assert (runs / "level_dim" / "table8.md").is_file()


def check_cells(experiment: str) -> list[list[str]]:
    from talker.config import check_overrides

    return check_overrides([f"experiment={experiment}"])


def test_quickstart_config_is_cpu_sized_but_paper_shaped() -> None:
    cfg = compose_config(["experiment=quickstart"])
    assert cfg.schedule.head_steps == 240000 and cfg.schedule.lr_milestones == [150000, 180000]
    assert cfg.conditioning.fusion._target_.endswith("AffineFusion")
    steps = OmegaConf.to_container(cfg, resolve=False)["trainer"]["max_steps"]
    assert "steps:" in steps  # derived from the schedule, not hard-coded


def test_resume_continues_from_the_checkpoint(tiny_overrides: list[str], tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    cfg = compose_config([*tiny_overrides, "schedule=progressive", "schedule.levels.every=2000", "trainer.max_steps=4"])
    train(cfg)
    first = load_checkpoint(run_dir / "checkpoints/last.ckpt")
    assert first["global_step"] == 4
    # Paper step 4000 (= real step 4 at scale 0.001): 4 + 4000 // 2000 = 6 levels, capped at 4.
    assert first["state_dict"]["head.field.encoder.level_mask"].tolist() == [1.0, 1.0, 1.0, 1.0]

    # Same config, longer: picks up the checkpoint instead of starting over.
    cfg = compose_config([*tiny_overrides, "schedule=progressive", "schedule.levels.every=2000", "trainer.max_steps=6"])
    train(cfg)
    second = load_checkpoint(run_dir / "checkpoints/last.ckpt")
    assert second["global_step"] == 6
    assert json.loads((run_dir / "metrics.json").read_text())["global_step"] == 6
    first_opt = first["optimizer_states"][0]["state"]
    second_opt = second["optimizer_states"][0]["state"]
    assert second_opt[0]["step"].item() == first_opt[0]["step"].item() + 2  # Adam moments carried over


class Killed(RuntimeError):
    """What a killed job leaves: an exception in the middle of training, nothing written after it."""


class KillAt(L.Callback):
    """Kills the fit as its step ``step`` begins (after the periodic checkpoint of the step before)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch, batch_idx: int) -> None:
        if trainer.global_step == self.step:
            raise Killed(f"killed at step {self.step}")


def killed_and_resumed(overrides: list[str], run: Path) -> tuple[dict, dict]:
    """Fit ``overrides`` into ``run``, killed at step 3 (TINY checkpoints every 2 steps), then relaunched."""
    killer = "+callbacks.kill={_target_: tests.test_fit.KillAt, step: 3}"
    with pytest.raises(Killed):
        train(compose_config([*overrides, f"run_dir={run}", killer]))
    assert load_checkpoint(run / "checkpoints/last.ckpt")["global_step"] == 2
    assert not (run / "metrics.json").exists()  # not finished: the relaunch resumes instead of skipping
    train(compose_config([*overrides, f"run_dir={run}"]))
    return final_state(run)


def final_state(run: Path) -> tuple[dict, dict]:
    """The run's last weights (and buffers) and its held-out metrics."""
    state = load_checkpoint(run / "checkpoints/last.ckpt")
    assert state["global_step"] == 6
    return state["state_dict"], json.loads((run / "metrics.json").read_text())["metrics"]


def assert_same_run(a: tuple[dict, dict], b: tuple[dict, dict]) -> None:
    assert a[0].keys() == b[0].keys()
    for key in a[0]:
        torch.testing.assert_close(b[0][key], a[0][key], rtol=0, atol=0, msg=key)
    assert b[1] == a[1]


def test_a_killed_run_resumes_to_what_an_uninterrupted_run_gives(
    tiny_overrides: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed mid-way and relaunched, a run ends with the uninterrupted run's weights, buffers (occupancy
    grid, level mask, sweep position) and held-out metrics; with a resume that forgets the optimiser's
    state (Adam's moments), it does not, so this test catches a broken resume."""
    overrides = [*tiny_overrides, "schedule=progressive", "schedule.levels.every=2000", "trainer.max_steps=6"]
    straight = train(compose_config([*overrides, f"run_dir={tmp_path / 'straight'}"]))
    expected = final_state(straight)
    assert {"head.occupancy.density", "head.sweep.batches", "head.field.encoder.level_mask"} <= set(expected[0])
    assert_same_run(expected, killed_and_resumed(overrides, tmp_path / "resumed"))

    from lightning.pytorch.trainer.connectors.checkpoint_connector import _CheckpointConnector

    monkeypatch.setattr(_CheckpointConnector, "restore_optimizers_and_schedulers", lambda self: None)
    with pytest.raises(AssertionError):
        assert_same_run(expected, killed_and_resumed(overrides, tmp_path / "broken"))


def test_evaluate_rewrites_metrics_reproducibly(tiny_overrides: list[str], tmp_path: Path) -> None:
    cfg = compose_config([*tiny_overrides, "trainer.max_steps=3"])
    run = train(cfg)
    at_fit = json.loads((run / "metrics.json").read_text())["metrics"]
    first = evaluate_run(run)
    second = evaluate_run(run)
    assert first == second
    for key, value in at_fit.items():
        assert first[key] == pytest.approx(value, abs=1e-9), key
    assert json.loads((run / "metrics.json").read_text())["metrics"] == second


def test_evaluate_cli_errors_name_the_file(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "talker.evaluate", f"run={tmp_path}"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "config.yaml: missing" in proc.stderr


@pytest.mark.parametrize("callbacks", [[], ["callbacks=[default,ema]"]], ids=["last_weights", "ema"])
def test_interrupted_and_resumed_equals_uninterrupted(tiny_overrides: list[str], tmp_path: Path, callbacks: list[str]) -> None:
    def final_state(run: Path, *stops: int) -> dict:
        for stop in stops:
            train(compose_config([*tiny_overrides, *callbacks, f"run_dir={run}", f"trainer.max_steps={stop}"]))
        return load_checkpoint(run / "checkpoints/last.ckpt")["state_dict"]

    straight = final_state(tmp_path / "straight", 6)
    resumed = final_state(tmp_path / "resumed", 3, 6)
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=0, msg=key)


def test_run_dir_on_the_command_line_moves_the_whole_run_folder(tmp_path: Path) -> None:
    """``run_dir=`` alone used to split a run: .hydra/ and fit.log in runs/<name>/<overrides>, the rest there."""
    argv = run_dir_as_hydra_dir(["experiment=quickstart", f"run_dir={tmp_path / 'mine'}"])
    assert argv == ["experiment=quickstart", f"hydra.run.dir={tmp_path / 'mine'}"]
    assert run_folder(argv) == tmp_path / "mine"


@pytest.mark.parametrize(("experiment", "table"), [("ablation", "table4"), ("baselines", "table1")])
def test_a_grid_under_its_own_name_gets_its_table(tmp_path: Path, experiment: str, table: str) -> None:
    """experiment=ablation name=my_clip (the ablation on one's own clip) writes a table of its runs, not
    an empty one: a spec's ``name`` (table4: the table's, table1: each row's) is read as the grid's name."""
    import shutil

    from talker.fit import write_grid_table
    from talker.reporting import build_table, collect_runs

    fixture = Path(__file__).parent / "reporting" / "fixtures" / "runs" / experiment
    grid = tmp_path / "my_clip"
    shutil.copytree(fixture, grid)
    for config in grid.glob("*/config.yaml"):
        config.write_text(config.read_text().replace(f"name: {experiment}\n", "name: my_clip\n", 1))
    write_grid_table(grid, table, "my_clip")
    assert (grid / f"{table}.md").read_text() == build_table(collect_runs(fixture), table).markdown()
