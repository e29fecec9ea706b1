"""The motion stage through the real entry point: experiment=motion trains, checkpoints, scores."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from talker.config import ConfigError, compose_config
from talker.fit import train
from talker.modules.motion import MotionModule
from talker.utils.checkpoints import load_checkpoint

from ..conftest import MOTION_TINY


@pytest.mark.slow
def test_experiment_motion_trains_through_the_entry_point(data_dir: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    proc = subprocess.run(
        [sys.executable, "-m", "talker.fit", *MOTION_TINY, f"paths.data_dir={data_dir}", f"paths.runs_dir={runs}"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = [p.parent for p in runs.rglob("metrics.json")]
    for name in ("config.yaml", "checkpoints/last.ckpt", "heldout_landmarks.npy"):
        assert (run / name).is_file(), name
    assert list((run / "tb").glob("events.out.tfevents.*"))
    result = json.loads((run / "metrics.json").read_text())
    assert result["global_step"] == 4 and result["num_frames"] == 20
    for key in ("l2", "mouth_l2", "l2_mode", "baseline_l2", "baseline_mouth_l2", "sync_acc"):
        assert math.isfinite(result["metrics"][key]), key
    predicted = np.load(run / "heldout_landmarks.npy")
    assert predicted.shape == (20, 68, 3)
    truth = np.load(Path(result["dataset"]) / "aud_idexp.npy")[-20:]
    # The file holds what was scored: its L2 against the held-out truth is the reported one.
    assert np.linalg.norm(predicted - truth, axis=-1).mean() == pytest.approx(result["metrics"]["l2"], rel=1e-4)


def test_regression_arm_and_checkpoint_alone_predicts(data_dir: Path, tmp_path: Path) -> None:
    tiny = [o for o in MOTION_TINY if not o.startswith("generator.flow")]  # keys of the variational generator
    cfg = compose_config([*tiny, "generator=regression", f"paths.data_dir={data_dir}", f"run_dir={tmp_path / 'run'}"])
    run = train(cfg)
    state = load_checkpoint(run / "checkpoints/last.ckpt")
    from talker.config import instantiate

    module: MotionModule = instantiate(cfg.model, "model")
    module.load_state_dict(state["state_dict"])  # statistics travel in the checkpoint
    assert bool(module.stats_ready) and module.landmark_std.min() > 0
    audio = torch.randn(30, 160)
    assert module.predict_landmarks(audio).shape == (30, 68, 3)
    torch.testing.assert_close(module.predict_landmarks(audio), module.predict_landmarks(audio))


def test_audio_dim_mismatch_is_one_line(data_dir: Path, tmp_path: Path) -> None:
    cfg = compose_config([*MOTION_TINY, "model.audio_dim=99", f"paths.data_dir={data_dir}", f"run_dir={tmp_path / 'run'}"])
    with pytest.raises(ConfigError, match=r"model.audio_dim=99, but aud_mel.npy gives 160-wide frame rows \(set model.audio_dim=160\)"):
        train(cfg)


def test_postnet_stage_refines_a_frozen_motion_stage(data_dir: Path, tmp_path: Path) -> None:
    motion_run = train(compose_config([*MOTION_TINY, f"paths.data_dir={data_dir}", f"run_dir={tmp_path / 'motion'}"]))
    tiny = [o for o in MOTION_TINY if not o.startswith(("experiment=", "generator.", "model."))]
    cfg = compose_config(
        ["experiment=postnet", *tiny, f"model.motion_run={motion_run}", "model.postnet.hidden=8", "model.discriminator.hidden=8",
         "model.lr=1e-2", f"paths.data_dir={data_dir}", f"run_dir={tmp_path / 'postnet'}"]
    )
    run = train(cfg)
    result = json.loads((run / "metrics.json").read_text())
    assert math.isfinite(result["metrics"]["l2"])
    state = load_checkpoint(run / "checkpoints/last.ckpt")["state_dict"]
    motion_state = load_checkpoint(motion_run / "checkpoints/last.ckpt")["state_dict"]
    for name, value in motion_state.items():  # the motion stage stayed frozen
        torch.testing.assert_close(state[f"motion.{name}"], value)
    assert state["postnet.out.weight"].abs().sum() > 0  # ... and the post-net left the identity
    with pytest.raises(ConfigError, match="model.motion_run must be a trained motion run"):
        train(compose_config(["experiment=postnet", *tiny, f"model.motion_run={tmp_path / 'none'}", f"paths.data_dir={data_dir}", f"run_dir={tmp_path / 'x'}"]))
