"""``python -m talker.preprocess`` end to end on a short cut of a real clip, and its failure modes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from talker.audio import write_wav
from talker.data.cameras import nerf_to_ngp
from talker.data.layout import DatasetError, read_transforms, validate_dataset
from talker.preprocess import Options, PreprocessError, preprocess
from talker.preprocess.__main__ import main
from talker.preprocess.tracking import intrinsics_matrix, project

SECONDS = 1.2  # 30 frames at 25 fps
SIZE = 128


def _landmarker(shared_data: Path) -> Path:
    task = shared_data.parent / "models" / "face_landmarker.task"
    if not task.is_file():
        pytest.skip(f"{task} absent")
    return task


def _write_video(path: Path, frames: np.ndarray, audio: np.ndarray | None) -> Path:
    import imageio_ffmpeg

    wav = None
    if audio is not None:
        wav = path.with_suffix(".wav")
        write_wav(wav, audio)
    writer = imageio_ffmpeg.write_frames(str(path), (frames.shape[2], frames.shape[1]), fps=25, audio_path=str(wav) if wav else None, ffmpeg_log_level="error")
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    return path


@pytest.fixture(scope="module")
def clip(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Options, dict]:
    """The first 1.2 s of May_5s.mp4 at 128 px, preprocessed once for the module."""
    options = Options(
        video=shared_data / "video" / "May_5s.mp4",
        out=tmp_path_factory.mktemp("preprocess") / "may",
        landmarker=_landmarker(shared_data),
        size=SIZE,
        seconds=SECONDS,
        val_fraction=0.2,
    )
    status = preprocess(options)
    return options.out, options, status


def test_output_validates_and_counts_agree(clip) -> None:
    out, _, status = clip
    assert all(isinstance(v, float) for v in status.values()), status  # a fresh run ran every step
    validate_dataset(out)
    n = int(SECONDS * 25)
    frames = [f for split in ("train", "val") for f in read_transforms(out, split)["frames"]]
    assert len(frames) == n and sorted(f["img_id"] for f in frames) == list(range(n))
    assert len(list((out / "ori_imgs").glob("*.jpg"))) == n == len(list((out / "ori_imgs").glob("*.lms")))
    assert len(list((out / "gt_imgs").glob("*.jpg"))) == n == len(list((out / "parsing").glob("*.png")))
    assert np.load(out / "aud_idexp.npy").shape == (n, 68, 3)
    assert np.load(out / "aud_mel.npy").shape == (n, 16, 80)
    from scipy.io import wavfile

    rate, audio = wavfile.read(out / "aud.wav")
    assert rate == 16000 and len(audio) == n * 640
    report = json.loads((out / "preprocess_report.json").read_text())
    assert report["no_face"]["detected"] == n and report["no_face"]["filled"] == []
    assert (out / "preview.png").is_file() and (out / "bc.jpg").is_file()


def test_pose_round_trip_reprojects_the_landmarks(clip) -> None:
    """The written poses and intrinsics put the canonical landmarks onto the detected ones.

    Bounds, in pixels of the 128 px frames: the expression landmarks (aud_idexp.npy) through the
    transforms' poses land on ori_imgs/*.lms within 0.05 px (a check of every convention on the way:
    NeRF <-> ngp, pixel centres, intrinsics); the person's mean face (no expression) within 1 % of
    the frame height on average over the rigid points and 1.5 % over all 68.
    """
    out, _, _ = clip
    meta = {s: read_transforms(out, s) for s in ("train", "val")}
    expressions = np.load(out / "aud_idexp.npy")
    k = intrinsics_matrix(meta["train"]["focal_len"], SIZE, SIZE)
    assert (meta["train"]["cx"], meta["train"]["cy"]) == (SIZE / 2, SIZE / 2)
    worst = 0.0
    for split in ("train", "val"):
        for frame in meta[split]["frames"]:
            c2w = nerf_to_ngp(np.asarray(frame["transform_matrix"]), 4.0)
            rotation, translation = c2w[:3, :3].T, -c2w[:3, :3].T @ c2w[:3, 3]
            pixels = project(expressions[frame["aud_id"]].astype(np.float64), rotation, translation, k)
            lms = np.loadtxt(out / "ori_imgs" / f"{frame['img_id']}.lms") + 0.5
            worst = max(worst, float(np.linalg.norm(pixels - lms, axis=-1).max()))
    assert worst < 0.05
    errors = json.loads((out / "preprocess_report.json").read_text())["tracking"]["reprojection_px"]
    assert errors["rigid_mean"] < 0.01 * SIZE
    assert errors["canonical68_mean"] < 0.015 * SIZE


def test_rerun_skips_finished_steps_and_redoes_damaged_ones(clip) -> None:
    out, options, _ = clip
    start = time.perf_counter()
    status = preprocess(options)
    assert set(status.values()) == {"skipped"} and time.perf_counter() - start < 10
    (out / "gt_imgs" / "3.jpg").unlink()
    status = preprocess(options)
    ran = [name for name, value in status.items() if value != "skipped"]
    assert ran == ["composite", "audio", "finalize"]
    validate_dataset(out)


def test_cli_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    with pytest.raises(SystemExit) as exit_info:
        main([f"video={corrupt}", f"out={tmp_path / 'out'}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("talker.preprocess: error: video=") and "corrupt.mp4" in err and "\n" not in err
    assert not (tmp_path / "out").exists()  # nothing finished: nothing left behind
    with pytest.raises(SystemExit):
        main([f"video={corrupt}", "size=big"])
    assert "size=big" in capsys.readouterr().err


def test_audio_shorter_than_video_is_refused(tmp_path: Path) -> None:
    frames = np.full((25, 64, 64, 3), 128, np.uint8)
    video = _write_video(tmp_path / "short_audio.mp4", frames, np.zeros(8000, np.float32))  # 0.5 s for 1 s
    out = tmp_path / "out"
    with pytest.raises(PreprocessError, match="audio is 0.5. s but the video 1.00 s"):
        preprocess(Options(video=video, out=out, size=64, landmarker=tmp_path / "unused.task"))
    with pytest.raises(DatasetError):
        validate_dataset(out)


def test_video_without_a_face_is_refused(shared_data: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = (rng.uniform(0, 255, (12, 64, 64, 3))).astype(np.uint8)
    video = _write_video(tmp_path / "noise.mp4", frames, np.zeros(16000, np.float32))
    out = tmp_path / "out"
    with pytest.raises(PreprocessError, match="a face was found in 0 of 12 frames"):
        preprocess(Options(video=video, out=out, size=64, landmarker=_landmarker(shared_data)))
    with pytest.raises(DatasetError):
        validate_dataset(out)


def test_missing_landmarker_names_the_file_and_where_to_get_it(shared_data: Path, tmp_path: Path) -> None:
    frames = np.full((5, 64, 64, 3), 128, np.uint8)
    video = _write_video(tmp_path / "grey.mp4", frames, np.zeros(4000, np.float32))
    with pytest.raises(PreprocessError, match=r"landmarker=.*nowhere\.task.*face_landmarker\.task"):
        preprocess(Options(video=video, out=tmp_path / "out", size=64, landmarker=tmp_path / "nowhere.task"))


def test_out_folder_of_something_else_is_not_touched(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    with pytest.raises(PreprocessError, match="not a talker.preprocess output"):
        preprocess(Options(video=video, out=tmp_path))
    assert (tmp_path / "precious.txt").read_text() == "keep me"

