"""Cross-driven evaluation (Table 2): a head driven by other speech, the video written and scored.

The callback is exercised on freshly built (untrained) heads, which drive and score like trained
ones; tests/baselines/test_experiment.py runs it at the end of real fits through the entry point.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from talker.callbacks import CrossDrivenEvaluation
from talker.config import ConfigError, compose_config, instantiate
from talker.fit import train
from talker.utils.media import read_audio, read_video

from ..conftest import BASELINES_TINY, MOTION_TINY


def build(system: str, data_dir: Path, run_dir: Path, *extra: str):
    """The head module, datamodule and cross-driven callback of a baselines cell, as talker.fit builds them."""
    cfg = compose_config(["experiment=baselines", f"system={system}", *BASELINES_TINY, f"paths.data_dir={data_dir}",
                          f"paths.runs_dir={run_dir / 'runs'}", f"run_dir={run_dir}", *extra])
    datamodule = instantiate(cfg.data, "data")
    datamodule.prepare_data()
    datamodule.setup("fit")
    module = instantiate(cfg.model, "model")
    with torch.no_grad():  # a trained grid's magnitude: an untrained head renders next to nothing
        for grid in module.head.field.encoder.modules():
            if hasattr(grid, "embeddings"):
                grid.embeddings.normal_(0, 0.5, generator=torch.Generator().manual_seed(0))
    callback: CrossDrivenEvaluation = instantiate(cfg.callbacks.cross_driven, "callbacks.cross_driven")
    return module, datamodule, callback


def check_setting(run: Path, setting: str, method: str) -> np.ndarray:
    video = run / "cross" / setting / f"{setting}.mp4"
    frames, fps = read_video(video)
    assert fps == 25 and len(frames) == 25 and frames[0].shape == (32, 32, 3)  # the first second (BASELINES_TINY)
    assert abs(read_audio(video).shape[0] / 16000 - 1.0) <= 1 / fps
    result = json.loads((run / "cross" / setting / "metrics.json").read_text())
    assert result["tags"] == {"method": method, "setting": setting} and result["num_frames"] == 25
    assert np.isfinite(result["metrics"]["sync_conf"])  # test-made SyncNet weights: the procedure, not the value
    assert "ground-truth" in result["unavailable"]["psnr"]  # no reference in the cross-driven setting
    return np.stack(frames)


def test_audio_head_is_driven_by_each_audio_and_scored(
    data_dir: Path, tmp_path: Path, tiny_speech: dict[str, Path], syncnet_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(syncnet_home))
    module, datamodule, callback = build("er_nerf", data_dir, tmp_path)
    with torch.no_grad():  # a trained audio net's magnitude: at PyTorch's initialisation (the reference's)
        for weight in module.head.conditioning.audio_net.parameters():  # two audios differ below 8 bits
            weight.mul_(8)
    callback.on_fit_start(None, module)  # the audio files exist, an audio head needs no motion stage
    for setting, audio in (("one", tiny_speech["a"]), ("two", tiny_speech["b"])):
        callback.drive_and_score(module, datamodule, setting, audio)
    one, two = check_setting(tmp_path, "one", "er_nerf"), check_setting(tmp_path, "two", "er_nerf")
    assert one.std() > 1 and not np.array_equal(one, two)  # a head over the backdrop, driven differently


def test_landmark_head_is_driven_through_the_motion_stage(
    data_dir: Path, tmp_path: Path, tiny_speech: dict[str, Path], syncnet_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    motion = train(compose_config([*MOTION_TINY, f"paths.data_dir={data_dir}", f"run_dir={tmp_path / 'motion'}"]))
    monkeypatch.setenv("TORCH_HOME", str(syncnet_home))
    module, datamodule, callback = build("geneface_pp", data_dir, tmp_path / "run", f"needs.motion.run_dir={motion}")
    callback.on_fit_start(None, module)  # the motion stage is there and trained
    stamp = (motion / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    callback.drive_and_score(module, datamodule, "one", tiny_speech["a"])
    check_setting(tmp_path / "run", "one", "geneface_pp")
    assert (motion / "checkpoints" / "last.ckpt").stat().st_mtime_ns == stamp  # used, not retrained


def test_missing_audio_or_motion_fails_at_fit_start_in_one_line(data_dir: Path, tmp_path: Path) -> None:
    module, _, callback = build("rad_nerf", data_dir, tmp_path, f"callbacks.cross_driven.audio.cross_gender={tmp_path / 'nowhere.wav'}")
    with pytest.raises(ConfigError, match=r"callbacks.cross_driven.audio.cross_gender=.*nowhere.wav: audio file does not exist"):
        callback.on_fit_start(None, module)
    module, _, callback = build("r2talker", data_dir, tmp_path, "callbacks.cross_driven.motion=null")
    callback.audio = {}  # only the motion stage is in question here
    with pytest.raises(ConfigError, match="callbacks.cross_driven.motion is null but the head is conditioned on landmarks"):
        callback.on_fit_start(None, module)
    module, _, callback = build("r2talker", data_dir, tmp_path, f"needs.motion.run_dir={tmp_path / 'untrained'}")
    callback.audio = {}
    with pytest.raises(ConfigError, match=r"untrained/config.yaml: missing; is .* a talker run folder \(motion stage\)"):
        callback.on_fit_start(None, module)
