"""A small baselines grid as `experiment=baselines` lays it out (cross-driven videos with their
metrics.json tags), made of second-long clips the fixture draws, and studies built from it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

pytest.importorskip("flask", reason="the study extra is not installed (pip install 'talker[study]')")
pytest.importorskip("sqlalchemy", reason="the study extra is not installed (pip install 'talker[study]')")

SYSTEMS = ("r2talker", "rad_nerf", "er_nerf")
SETTINGS = ("cross_gender", "cross_lingual")
FPS = 25


def write_clip(path: Path, seconds: float, colour: tuple[int, int, int], size: int = 48, tone: float = 220.0, title: str = "") -> Path:
    """An mp4 of a coloured square with a mouth-like bar that opens and closes, and a tone; ``title``
    goes into the container's metadata (as a real method's file may name it)."""
    import imageio_ffmpeg

    path.parent.mkdir(parents=True, exist_ok=True)
    wav = path.with_suffix(".wav")
    t = np.arange(int(seconds * 16000)) / 16000
    wavfile.write(str(wav), 16000, (0.2 * np.sin(2 * np.pi * tone * t) * 32767).astype(np.int16))
    writer = imageio_ffmpeg.write_frames(str(path), (size, size), fps=FPS, audio_path=str(wav), audio_codec="aac",
                                         macro_block_size=2, ffmpeg_log_level="error",
                                         output_params=["-metadata", f"title={title}"] if title else None)
    writer.send(None)
    for k in range(int(seconds * FPS)):
        frame = np.full((size, size, 3), colour, dtype=np.uint8)
        opening = int(2 + 6 * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * k / FPS)))
        frame[size // 2 : size // 2 + opening, size // 3 : 2 * size // 3] = 20
        writer.send(frame)
    writer.close()
    wav.unlink()
    return path


def make_grid(root: Path, systems=SYSTEMS, settings=SETTINGS, seconds: float = 1.0) -> Path:
    """runs/baselines/system=<s>/cross/<setting>/{<setting>.mp4, metrics.json} as the grid writes them."""
    colours = [(200, 80, 80), (80, 200, 80), (80, 80, 200), (200, 200, 80)]
    grid = root / "baselines"
    for k, system in enumerate(systems):
        for j, setting in enumerate(settings):
            folder = grid / f"system={system}" / "cross" / setting
            video = write_clip(folder / f"{setting}.mp4", seconds, colours[k % len(colours)], tone=220.0 * (j + 1), title=system)
            provenance = {"metrics": {"sync_conf": 1.0}, "unavailable": {}, "num_frames": int(seconds * FPS),
                          "source": str(video), "tags": {"method": system, "setting": setting}}
            (folder / "metrics.json").write_text(json.dumps(provenance))
    return grid


@pytest.fixture(scope="session")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_grid(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="session")
def ground_truth_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("gt") / "gt.mp4", 1.0, (180, 150, 130))


@pytest.fixture(scope="session")
def study_dir(grid: Path, ground_truth_video: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A study of the grid: 3 methods x 2 clips, a ground-truth and a broken attention check."""
    from talker.study.create import create_study

    out = tmp_path_factory.mktemp("studies") / "baselines"
    create_study([grid], out, ground_truth=ground_truth_video, seconds=1.0)
    return out
