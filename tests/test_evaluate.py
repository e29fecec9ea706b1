"""talker.evaluate on externally rendered frames: the same metrics, the same numbers as the training callback."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
from PIL import Image

from talker.config import compose_config
from talker.evaluate import main
from talker.evaluation import evaluate_frames, evaluate_run
from talker.fit import train
from talker.metrics.sync import SYNCNET_FILE, SyncNet

from .conftest import TINY


@pytest.fixture(scope="module")
def run_with_sync(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A tiny run scored at the end of its fit with test-made SyncNet weights in $TORCH_HOME."""
    tmp = tmp_path_factory.mktemp("external")
    home = tmp / "torch_home"
    (home / "hub" / "checkpoints").mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(SyncNet().state_dict(), home / "hub" / "checkpoints" / SYNCNET_FILE)
    mp = pytest.MonkeyPatch()
    mp.setenv("TORCH_HOME", str(home))
    overrides = [*TINY, "data.synthetic.val_fraction=0.5", f"paths.data_dir={data_dir}", f"run_dir={tmp / 'run'}", "trainer.max_steps=3"]
    try:
        run = train(compose_config(overrides))
    finally:
        mp.undo()
    (run / "torch_home").symlink_to(home)
    return run


def test_scoring_saved_renders_reproduces_the_callbacks_numbers(run_with_sync: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(run_with_sync / "torch_home"))
    at_fit = json.loads((run_with_sync / "metrics.json").read_text())
    assert {"psnr", "ssim", "sync_conf", "cond_gap_mouth", "psnr_mouth_other"} <= set(at_fit["metrics"])
    summary, out = evaluate_frames(
        run_with_sync / "renders", reference=at_fit["dataset"], out=tmp_path / "ext", tags={"method": "ours"}
    )
    head_only = {"cond_gap_mouth", "psnr_mouth_other"}  # needs the head: renders under another frame's condition
    for key, value in at_fit["metrics"].items():
        if key not in head_only:
            assert summary[key] == pytest.approx(value, abs=1e-9), key
    written = json.loads((out / "metrics.json").read_text())
    assert not head_only & set(summary) and "another held-out frame's condition" in written["unavailable"]["cond_gap"]
    assert written["matched_by"] == "img_id" and written["tags"] == {"method": "ours"}
    assert written["metrics"] == summary and (out / "frames.csv").is_file()


def test_a_video_without_reference_is_scored_by_sync_only(run_with_sync: Path, tmp_path: Path) -> None:
    renders = sorted((run_with_sync / "renders").glob("*.png"), key=lambda p: int(p.stem))
    video = tmp_path / "wav2lip_result.mp4"
    with imageio.get_writer(video, fps=25, codec="libx264", quality=9, macro_block_size=1) as writer:
        for path in renders:
            writer.append_data(np.asarray(Image.open(path).convert("RGB")))
    dataset = Path(json.loads((run_with_sync / "metrics.json").read_text())["dataset"])
    proc = subprocess.run(
        [sys.executable, "-m", "talker.evaluate", f"frames={video}", f"audio={dataset / 'aud.wav'}", "tag.method=wav2lip", "tag.setting=cross_lingual"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    written = json.loads((tmp_path / "wav2lip_result_eval" / "metrics.json").read_text())
    assert written["num_frames"] == len(renders)
    assert written["tags"] == {"method": "wav2lip", "setting": "cross_lingual"}
    for name in ("psnr", "ssim", "lpips", "fid", "lmd"):
        assert "ground-truth" in written["unavailable"][name], name
    # No test weights in this process's cache: Sync says which file is missing instead of a number.
    assert SYNCNET_FILE in written["unavailable"]["sync"] and written["metrics"] == {}


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "0.png")
    ref = tmp_path / "ref"
    ref.mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(ref / "0.png")
    cases = {
        (f"frames={tmp_path / 'missing'}",): "no such folder or video",
        (f"frames={folder}", f"reference={ref}"): "is 8x8, its reference 16x16",
        (f"frames={folder}", "bogus=1"): "not understood: bogus=1",
        (f"run={tmp_path}", "tag.method=x"): "not understood: tag.method",
    }
    for args, message in cases.items():
        with pytest.raises(SystemExit) as exit_info:
            main(list(args))
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and message in err, (args, err)
        assert err.strip().count("\n") <= 3 and "Traceback" not in err  # usage lines at most
    assert not (tmp_path / "frames_eval").exists()  # nothing written on bad input


def test_the_condition_gap_switches_off_like_every_metric(run_with_sync: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(run_with_sync / "torch_home"))
    copy = tmp_path / "run"
    shutil.copytree(run_with_sync, copy, symlinks=True)
    at_fit = json.loads((copy / "metrics.json").read_text())["metrics"]
    again = evaluate_run(copy)
    assert again["cond_gap_mouth"] == at_fit["cond_gap_mouth"] and again["psnr_mouth"] == at_fit["psnr_mouth"]
    off = evaluate_run(copy, overrides=["callbacks.evaluation.evaluator.metrics.cond_gap=null"])
    assert "cond_gap_mouth" not in off and "psnr_mouth_other" not in off and off["psnr_mouth"] == at_fit["psnr_mouth"]
