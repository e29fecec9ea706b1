"""The Wav2Lip adapter: scores a video or a frame folder made elsewhere; PSNR, SSIM and LPIPS are N/A."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest

from talker.baselines.wav2lip import NOT_APPLICABLE, score_wav2lip
from talker.data.layout import load_split
from talker.reporting import build_table, collect_runs


@pytest.fixture(scope="module")
def wav2lip_result(tiny_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """What Wav2Lip would hand back for the training frames: the frames with a repainted lower face,
    as an mp4 with the dataset's audio, and as a folder of frames."""
    split = load_split(tiny_clip, "train")
    frames = split.images.numpy().copy()
    height = frames.shape[1]
    frames[:, height * 2 // 3 :] = frames[:, height * 2 // 3 :] // 2 + 60  # the pasted-back mouth region
    folder = tmp_path_factory.mktemp("wav2lip")
    with imageio.get_writer(folder / "result.mp4", fps=25, codec="libx264", quality=9, macro_block_size=1) as writer:
        for frame in frames:
            writer.append_data(frame)
    (folder / "frames").mkdir()
    for img_id, frame in zip(split.img_ids, frames):
        imageio.imwrite(folder / "frames" / f"{int(img_id)}.png", frame)
    return {"video": folder / "result.mp4", "folder": folder / "frames"}


@pytest.mark.parametrize("kind", ["video", "folder"])
def test_scores_video_or_folder_and_marks_fidelity_metrics_not_applicable(
    kind: str, wav2lip_result: dict[str, Path], tiny_clip: Path, tmp_path: Path, syncnet_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(syncnet_home))
    out = tmp_path / "runs" / "baselines" / "wav2lip" / "self_driven"
    summary, folder = score_wav2lip(wav2lip_result[kind], reference=tiny_clip, split="train", out=out)
    written = json.loads((folder / "metrics.json").read_text())
    assert folder == out and written["tags"] == {"method": "wav2lip", "setting": "self_driven"}
    assert written["num_frames"] == 9
    for name in NOT_APPLICABLE:
        assert name not in written["metrics"] and name not in written["unavailable"]
        assert "not applicable" in written["not_applicable"][name]
    assert not any(key.startswith(NOT_APPLICABLE) for key in summary)  # no psnr_face, ssim_mouth, ... either
    assert np.isfinite(written["metrics"]["sync_conf"])  # scored with the dataset's landmarks and audio
    table = build_table(collect_runs(tmp_path / "runs"), "table1")
    row = next(line for line in table.markdown().splitlines() if line.startswith("| Wav2Lip"))
    assert row.split(" | ")[1:5] == ["N/A"] * 4 and table.cells[("Wav2Lip", "Sync")].n == 1


def test_command_line_and_its_errors(wav2lip_result: dict[str, Path], tiny_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "cross"
    proc = subprocess.run(
        [sys.executable, "-m", "talker.baselines.wav2lip", f"frames={wav2lip_result['video']}", f"audio={tiny_clip / 'aud.wav'}",
         "setting=cross_lingual", f"out={out}"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    written = json.loads((out / "metrics.json").read_text())
    assert written["tags"]["setting"] == "cross_lingual" and "SyncNet" in written["unavailable"]["sync"]  # no weights here
    proc = subprocess.run(
        [sys.executable, "-m", "talker.baselines.wav2lip", f"frames={tmp_path / 'none.mp4'}"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "none.mp4: no such folder or video" in proc.stderr
