"""talker.drive: a tiny quickstart head driven through a tiny motion stage by real speech -> mp4 with audio."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from talker.audio import load_audio, write_wav
from talker.config import ConfigError, compose_config
from talker.drive import main
from talker.fit import train
from talker.inference import drive, pingpong, smooth_poses
from talker.utils.media import read_audio, read_video

from ..conftest import MOTION_TINY, TINY

NO_SCORING = ["callbacks.evaluation=null", "callbacks.projector=null", "callbacks.images=null"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("drive")
    head = train(compose_config(["experiment=quickstart", *TINY, *NO_SCORING, f"paths.data_dir={data_dir}", f"run_dir={root / 'head'}"]))
    motion = train(compose_config([*MOTION_TINY, f"paths.data_dir={data_dir}", f"run_dir={root / 'motion'}"]))
    return {"head": head, "motion": motion, "root": root}


@pytest.fixture(scope="module")
def speech(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 2.3 s of real speech from ../shared/data/audio (44.1 kHz stereo is fine too: ffmpeg reads it)."""
    audio = load_audio(shared_data / "audio" / "Obama_5s.wav")[: int(2.3 * 16000)]
    path = tmp_path_factory.mktemp("speech") / "obama.wav"
    write_wav(path, audio)
    return path


def test_driven_video_and_audio_durations_match(runs: dict[str, Path], speech: Path) -> None:
    out = runs["root"] / "out" / "obama"
    video_path, landmark_path = drive(runs["head"], speech, motion=runs["motion"], out=out, device="cpu")
    frames, fps = read_video(video_path)
    audio = read_audio(video_path)
    assert fps == 25 and frames[0].shape == (32, 32, 3)
    video_seconds, audio_seconds = len(frames) / fps, audio.shape[0] / 16000
    source_seconds = load_audio(speech).shape[0] / 16000
    assert abs(video_seconds - audio_seconds) <= 1 / fps, (video_seconds, audio_seconds)
    assert abs(audio_seconds - source_seconds) <= 1 / fps
    landmarks = np.load(landmark_path)
    assert landmarks.shape == (len(frames), 68, 3) and np.isfinite(landmarks).all()
    assert frames[0].std() > 1  # a rendered head over the dataset's backdrop, not a blank frame


def test_motion_run_alone_gives_landmarks_video(runs: dict[str, Path], speech: Path) -> None:
    video_path, landmark_path = drive(runs["motion"], speech, out=runs["root"] / "out" / "lm", device="cpu")
    frames, _ = read_video(video_path)
    assert np.load(landmark_path).shape[0] == len(frames) == 58  # ceil(2.3 * 25)


def test_missing_stages_are_one_line_errors(runs: dict[str, Path], speech: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"conditioned on landmarks \(LandmarkHash\) and the run has no motion stage: pass motion="):
        drive(runs["head"], speech, out=tmp_path / "x")
    with pytest.raises(ConfigError, match=r"nowhere/config.yaml: missing; is .* a talker run folder"):
        drive(tmp_path / "nowhere", speech)
    (tmp_path / "untrained").mkdir()
    (tmp_path / "untrained" / "config.yaml").write_text((runs["motion"] / "config.yaml").read_text())
    with pytest.raises(ConfigError, match=r"untrained/checkpoints/last.ckpt: missing; the motion stage of .* was never trained"):
        drive(runs["head"], speech, motion=tmp_path / "untrained")
    with pytest.raises(ConfigError, match="motion=.*: not a motion run"):
        drive(runs["head"], speech, motion=runs["head"])
    assert not list(tmp_path.rglob("*.mp4"))  # nothing half-written


def test_command_line(runs: dict[str, Path], speech: Path, capsys: pytest.CaptureFixture) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "talker.drive", f"run={runs['motion']}", f"audio={speech.parent / 'none.wav'}"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2 and "none.wav: audio file does not exist" in proc.stderr
    with pytest.raises(SystemExit) as exit_info:
        main(["run=x", "voice=y"])
    assert exit_info.value.code == 2
    assert "usage: python -m talker.drive" in capsys.readouterr().err


def test_drive_renders_on_the_fast_path_unless_told_otherwise(runs: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    """``inference.fast=false`` renders on the training path; both give the same frames (8-bit), and a
    mistyped switch is a one-line error before anything loads."""
    import torch

    from talker.inference.drive import driven_frames, head_and_data
    from talker.runs import RunFolder

    head, datamodule = head_and_data(RunFolder(runs["head"]))
    landmarks = datamodule.train_split.landmarks[:3].numpy().astype(np.float32)
    rendered = {
        fast: list(driven_frames(head, datamodule.train_split, landmarks, np.zeros(16000, np.float32), 3, fast=fast))
        for fast in (True, False)
    }
    for a, b in zip(rendered[True], rendered[False]):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    with pytest.raises(SystemExit) as exit_info:
        main([f"run={runs['head']}", "audio=x.wav", "inference.fast=maybe"])
    assert exit_info.value.code == 2
    assert "inference.fast=maybe: expected true or false" in capsys.readouterr().err
    assert torch.is_grad_enabled()


def test_pingpong_and_pose_smoothing() -> None:
    assert pingpong(9, 4).tolist() == [0, 1, 2, 3, 2, 1, 0, 1, 2]
    import torch

    angles = torch.linspace(0, 0.5, 30) + torch.randn(30, generator=torch.Generator().manual_seed(0)) * 0.05
    poses = torch.eye(4).repeat(30, 1, 1)
    poses[:, 0, 0], poses[:, 0, 1], poses[:, 1, 0], poses[:, 1, 1] = angles.cos(), -angles.sin(), angles.sin(), angles.cos()
    poses[:, :3, 3] = torch.randn(30, 3)
    smoothed = smooth_poses(poses, 2.0)
    rotations = smoothed[:, :3, :3]
    torch.testing.assert_close(rotations @ rotations.transpose(1, 2), torch.eye(3).expand(30, 3, 3), atol=1e-5, rtol=0)
    assert (smoothed[:, :3, 3].diff(dim=0).norm(dim=-1).mean()) < 0.5 * poses[:, :3, 3].diff(dim=0).norm(dim=-1).mean()


def test_audio_conditioned_head_is_driven_by_the_audio_alone(data_dir: Path, speech: Path, tmp_path: Path) -> None:
    """RAD-NeRF's arm needs no motion stage: the new audio's feature windows condition it directly."""
    head = train(compose_config([
        "experiment=quickstart", *TINY, *NO_SCORING, "conditioning=audio_spatial",
        f"paths.data_dir={data_dir}", f"run_dir={tmp_path / 'head'}",
    ]))
    video_path, landmark_path = drive(head, speech, out=tmp_path / "out" / "obama", device="cpu")
    frames, fps = read_video(video_path)
    audio = read_audio(video_path)
    assert fps == 25 and len(frames) == 58 and frames[0].shape == (32, 32, 3)
    assert abs(len(frames) / fps - audio.shape[0] / 16000) <= 1 / fps
    assert frames[0].std() > 1
    assert not landmark_path.exists()  # no landmarks were predicted


def test_drive_writes_each_frame_as_it_is_rendered(
    runs: dict[str, Path], speech: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long audio file must not hold all its frames: the encoder receives frame k right after the
    k-th render, before the next one starts (the structure that keeps drive's memory flat, checked
    without measuring memory), and what it receives are the frames ``driven_frames`` renders for the
    same head and audio (the whole clip in a list, as drive did before it streamed)."""
    import importlib

    import imageio_ffmpeg

    from talker.audio import LogMel
    from talker.inference.drive import MotionStage, driven_frames, head_and_data
    from talker.runs import RunFolder

    drive_module = importlib.import_module("talker.inference.drive")  # the module: the package's `drive` is the function
    renders = []
    real_renderer = drive_module.frame_renderer

    def counting_renderer(head, **options):
        render = real_renderer(head, **options)

        def counted(frame):
            renders.append(1)
            return render(frame)

        return counted

    received: list[tuple[int, np.ndarray]] = []  # (renders done when the frame reached the encoder, frame)
    real_writer = imageio_ffmpeg.write_frames

    def spying_writer(*args, **kwargs):
        writer = real_writer(*args, **kwargs)

        class Spy:
            def send(self, frame):
                if frame is not None:
                    received.append((len(renders), frame.copy()))
                return writer.send(frame)

            def close(self):
                writer.close()

        return Spy()

    monkeypatch.setattr(drive_module, "frame_renderer", counting_renderer)
    monkeypatch.setattr(imageio_ffmpeg, "write_frames", spying_writer)
    short = speech.parent / "short.wav"
    write_wav(short, load_audio(speech)[: int(0.4 * 16000)])  # 10 frames
    drive(runs["head"], short, motion=runs["motion"], out=runs["root"] / "out" / "streamed", device="cpu")
    assert [count for count, _ in received] == list(range(1, 11))

    head, datamodule = head_and_data(RunFolder(runs["head"]))
    samples = load_audio(short)
    landmarks = MotionStage(runs["motion"]).landmarks(samples, head.device)
    listed = list(driven_frames(
        head, datamodule.train_split, landmarks, samples, 10, conditions=datamodule.conditions,
        audio_features=datamodule.audio_features or LogMel.file_name,
    ))
    assert len(listed) == 10
    for (_, sent), rendered in zip(received, listed):
        np.testing.assert_array_equal(sent, rendered)


def test_a_failed_render_leaves_no_video(tmp_path: Path, speech: Path) -> None:
    """Frames that fail part-way (an error while rendering) leave neither the video nor its temporary file."""
    from talker.inference import write_video

    def frames():
        yield np.zeros((8, 8, 3), np.uint8)
        raise RuntimeError("render failed")

    with pytest.raises(RuntimeError, match="render failed"):
        write_video(tmp_path / "v.mp4", frames(), speech)
    assert not list(tmp_path.glob("*.mp4")) and not list(tmp_path.glob(".*.mp4"))


def test_a_head_with_an_id_encoder_is_driven_with_its_persons_reference(tiny_clip: Path) -> None:
    """system=lokitalk_id reads the person's reference crop, which the frame conditions hold themselves
    (data.reference): driving must not call it an input nothing drives."""
    from talker.inference.drive import driven_frames

    from ..fields.test_contract import system_head

    head, split, conditions = system_head("lokitalk_id", tiny_clip)
    assert conditions.references is not None
    frames = list(driven_frames(head.eval(), split, split.landmarks[:2].numpy(), np.zeros(16000, np.float32), 2,
                                conditions=conditions, fast=False))
    assert len(frames) == 2 and frames[0].shape == (split.height, split.width, 3)
