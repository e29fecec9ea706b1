"""The reliability catalogue: bad inputs and faults a hostile but fair user meets, each run through
a command-line tool's ``main`` in this process (as ``python -m ...`` runs it).

Every case must end in exactly one line on stderr, ``<tool>: error: ...``, naming the file or config
key, with a non-zero exit status and no traceback, and must leave every file that existed before it
byte-identical (Hydra's own record of the launch, ``.hydra/``, excepted: Hydra rewrites it at
every launch). The faults that end well (a damaged checkpoint, a full disk during a fit) are tested
below the catalogue: the rerun resumes from the last good checkpoint and ends with the metrics of
an uninterrupted run.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import talker.fit as fit_module
from talker.config import compose_config
from talker.fit import train
from talker.runs import RunFolder
from talker.utils import checkpoints
from talker.utils.checkpoints import load_checkpoint

from .conftest import MOTION_TINY, TINY, write_crafted_checkpoint

FOLDER_TINY = [o for o in TINY if not o.startswith("data.synthetic.")]
HYDRA_RECORD = ".hydra"


@dataclass
class World:
    """What one case may use: its own folder, and copies of the session's dataset and trained run."""

    tmp: Path
    clip: Path
    trained: Path
    speech: Path
    data_dir: Path
    marker: Path = field(init=False)

    def __post_init__(self) -> None:
        self.marker = self.tmp / "CODE_RAN"  # created only if a crafted file runs its code

    def dataset(self) -> Path:
        target = self.tmp / "dataset"
        if not target.exists():
            shutil.copytree(self.clip, target)
        return target

    def run(self) -> Path:
        target = self.tmp / "run"
        if not target.exists():
            shutil.copytree(self.trained, target)
        return target

    def config_only_run(self, overrides: list[str], name: str) -> Path:
        """A run folder holding the resolved config of ``overrides`` and no checkpoint."""
        folder = self.tmp / name
        RunFolder(folder).write_config(compose_config([*overrides, f"paths.data_dir={self.data_dir}", f"run_dir={folder}"]))
        return folder

    def fit(self, *extra: str) -> list[str]:
        return [*TINY, f"paths.data_dir={self.data_dir}", f"paths.runs_dir={self.tmp / 'runs'}", *extra]

    def fit_folder(self, root: Path, *extra: str) -> list[str]:
        return [*FOLDER_TINY, "data=folder", f"data.root={root}", f"paths.runs_dir={self.tmp / 'runs'}", *extra]


@dataclass
class Case:
    id: str
    tool: str  # fit | evaluate | drive | preprocess | audio | wav2lip
    setup: Callable[[World], list[str]]  # damages the world's copies, returns argv
    expect: Callable[[World], str] | str  # what the one line must name (a file or a key=value)
    status: int = 2


def _tool(name: str) -> Callable[[list[str]], None]:
    import talker.audio.__main__ as audio_cli
    import talker.baselines.wav2lip as wav2lip_cli
    import talker.drive as drive_cli
    import talker.evaluate as evaluate_cli
    import talker.fit as fit_cli
    import talker.preprocess.__main__ as preprocess_cli

    return {
        "fit": fit_cli.main, "evaluate": evaluate_cli.main, "drive": drive_cli.main,
        "preprocess": preprocess_cli.main, "audio": audio_cli.main, "wav2lip": wav2lip_cli.main,
    }[name]


# ---- ways to damage files ----------------------------------------------------------------------------

def truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def garble_jpeg_body(path: Path) -> Path:
    """Random bytes after the start-of-scan header (seeded so that the decoder fails, as it does on
    most garbled files; some garbage decodes to noise without an error)."""
    data = path.read_bytes()
    start = data.index(b"\xff\xda") + 14
    body = np.random.default_rng(0).integers(0, 256, len(data) - start - 6, dtype=np.uint8).tobytes()
    path.write_bytes(data[:start] + body + data[-2:])
    return path


def set_lms_value(path: Path, value: str) -> Path:
    lines = path.read_text().splitlines()
    lines[30] = f"{value} {value}"
    path.write_text("\n".join(lines) + "\n")
    return path


def edit_npy(path: Path, change: Callable[[np.ndarray], np.ndarray]) -> Path:
    np.save(path, change(np.load(path)))
    return path


def first_frame(root: Path, split: str = "train") -> int:
    return json.loads((root / f"transforms_{split}.json").read_text())["frames"][0]["img_id"]


def drop_manifest(root: Path) -> Path:
    """Without its manifest (checksums), a damaged file is found by the check that names its problem."""
    (root / "manifest.json").unlink()
    return root


def dataset_with(damage: Callable[[Path], object]) -> Callable[[World], list[str]]:
    def setup(w: World) -> list[str]:
        root = drop_manifest(w.dataset())
        damage(root)
        return w.fit_folder(root)

    return setup


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def crafted_config(run: Path, target: str = "os.system") -> Path:
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("_target_: talker.modules.head.HeadModule", f"_target_: {target}", 1))
    assert target in config.read_text()
    return config


def small_frames(folder: Path, size: int = 16, count: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(np.full((size, size, 3), 40 * i, np.uint8)).save(folder / f"{i}.png")
    return folder


# ---- the catalogue ---------------------------------------------------------------------------------

RANGE_CASES = [
    ("data.num_rays=0", "data.num_rays=0: must be an integer >= 1"),
    ("data.num_rays=-5", "data.num_rays=-5: must be an integer >= 1"),
    ("data.num_rays=abc", "data.num_rays=abc: must be an integer >= 1"),
    ("data.num_rays=1.5", "data.num_rays=1.5: must be an integer"),
    ("schedule.scale=0", "schedule.scale=0: must be a number > 0"),
    ("schedule.scale=-1", "schedule.scale=-1: must be a number > 0"),
    ("schedule.scale=abc", "schedule.scale=abc: must be a number > 0"),
    ("model.lr_net=0", "model.lr_net=0: must be a number > 0"),
    ("model.lr_encoder=-1e-3", "model.lr_encoder=-0.001: must be a number > 0"),
    ("data.face_fraction=1.5", "data.face_fraction=1.5: must be a number in [0, 1]"),
    ("data.face_fraction=0.9", "data.face_fraction=0.9 + data.mouth_fraction=0.25"),
    ("data.synthetic.resolution=4", "data.synthetic.resolution=4: must be an integer >= 16"),
    ("data.synthetic.num_frames=1", "data.synthetic.num_frames=1: must be an integer >= 2"),
    ("data.synthetic.val_fraction=1.0", "data.synthetic.val_fraction=1.0: must be a number in (0, 1)"),
    ("field.position_encoder.num_levels=0", "field.position_encoder.num_levels=0: must be an integer >= 1"),
    ("field.position_encoder.log2_hashmap_size=40", "field.position_encoder.log2_hashmap_size=40: must be an integer in [4, 24]"),
    ("trainer.max_steps=0", "trainer.max_steps=0: must be an integer >= 1"),
    ("seed=-1", "seed=-1: must be an integer in [0, 4294967295]"),
    ("schedule.lr_milestones=[150000,-1]", "schedule.lr_milestones.1=-1: must be an integer >= 0"),
    ("model.head.occupancy.decay=0", "model.head.occupancy.decay=0: must be a number in (0, 1]"),
]

CASES: list[Case] = [
    # --- config mistakes: fail when the config is composed, before any work
    *(Case(f"fit-{override}", "fit", lambda w, o=override: w.fit(o), message) for override, message in RANGE_CASES),
    Case("fit-ema-decay-1", "fit", lambda w: w.fit("callbacks=[default,ema]", "callbacks.ema.decay=1"), "callbacks.ema.decay=1"),
    Case("fit-grid-bad-last-cell", "fit", lambda w: w.fit("model.lr_net=1e-3,-1"), "model.lr_net=-1: must be a number > 0"),
    Case("fit-group-typo", "fit", lambda w: w.fit("conditioning=landmark_hsh"), "conditioning=landmark_hsh: no such conditioning config"),
    Case("fit-unknown-key", "fit", lambda w: w.fit("data.num_ray=64"), "data.num_ray: unknown config key"),
    Case("fit-target-os-system", "fit", lambda w: w.fit("model._target_=os.system"), "model._target_=os.system: refused"),
    Case("fit-target-builtins-eval", "fit", lambda w: w.fit("+callbacks.evil._target_=builtins.eval"), "callbacks.evil._target_=builtins.eval: refused"),
    Case("fit-unparsable-override", "fit", lambda w: w.fit("name=run (copy)"), "name=run (copy): cannot be parsed"),
    Case("fit-unparsable-path", "fit", lambda w: w.fit(f"paths.runs_dir={w.tmp}/my runs]"), "my runs]: cannot be parsed"),
    # --- run folders
    Case("fit-runs-dir-under-a-file", "fit", lambda w: w.fit(f"paths.runs_dir={write_text(w.tmp / 'afile', 'x')}/runs"), lambda w: f"{w.tmp / 'afile'}/runs"),
    Case("fit-run-with-other-settings", "fit",
         lambda w: w.fit(f"run_dir={w.run()}", "data.num_rays=64"), "holds a run with other settings (data.num_rays)"),
    Case("fit-run-config-not-yaml", "fit",
         lambda w: w.fit(f"run_dir={w.run()}", "trainer.max_steps=6") if write_text(w.run() / "config.yaml", "a: [b\n") else [],
         lambda w: f"{w.tmp / 'run' / 'config.yaml'}: not a readable config"),
    # --- damaged datasets (data=folder)
    Case("data-root-missing", "fit", lambda w: w.fit_folder(w.tmp / "nowhere"), lambda w: f"{w.tmp / 'nowhere'}: dataset folder does not exist"),
    Case("data-root-empty", "fit", lambda w: w.fit_folder(Path(os.makedirs(w.tmp / "empty") or w.tmp / "empty")), "transforms_train.json: missing"),
    Case("data-root-not-set", "fit", lambda w: [*FOLDER_TINY, "data=folder", f"paths.runs_dir={w.tmp / 'runs'}"], "data.root is not set"),
    Case("data-transforms-invalid-json", "fit", dataset_with(lambda r: truncate(r / "transforms_train.json", 0.6)), "transforms_train.json: not valid JSON"),
    Case("data-transforms-val-missing", "fit", dataset_with(lambda r: (r / "transforms_val.json").unlink()), "transforms_val.json: missing"),
    Case("data-frame-without-pose", "fit", dataset_with(lambda r: write_text(r / "transforms_train.json", json.dumps(
        {**json.loads((r / "transforms_train.json").read_text()), "frames": [{"img_id": 0, "aud_id": 0}]}))), "frame 0 has no 'transform_matrix'"),
    Case("data-image-deleted", "fit", dataset_with(lambda r: (r / "gt_imgs" / f"{first_frame(r)}.jpg").unlink()),
         lambda w: f"gt_imgs/{first_frame(w.tmp / 'dataset')}.jpg: missing"),
    Case("data-image-truncated", "fit", dataset_with(lambda r: truncate(r / "gt_imgs" / f"{first_frame(r)}.jpg", 0.5)),
         lambda w: f"gt_imgs/{first_frame(w.tmp / 'dataset')}.jpg: not a readable image"),
    Case("data-image-garbled", "fit", dataset_with(lambda r: garble_jpeg_body(r / "gt_imgs" / f"{first_frame(r)}.jpg")),
         lambda w: f"gt_imgs/{first_frame(w.tmp / 'dataset')}.jpg: not a readable image"),
    Case("data-torso-truncated", "fit", dataset_with(lambda r: truncate(r / "torso_imgs" / f"{first_frame(r)}.png", 0.5)),
         lambda w: f"torso_imgs/{first_frame(w.tmp / 'dataset')}.png"),
    Case("data-image-other-size", "fit", dataset_with(lambda r: Image.new("RGB", (20, 20)).save(r / "gt_imgs" / f"{first_frame(r)}.jpg")),
         "differs from bc.jpg"),
    Case("data-bc-missing", "fit", dataset_with(lambda r: (r / "bc.jpg").unlink()), "bc.jpg: missing"),
    Case("data-bc-not-an-image", "fit", dataset_with(lambda r: write_text(r / "bc.jpg", "not a jpeg")), "bc.jpg: not a readable image"),
    Case("data-lms-nan", "fit", dataset_with(lambda r: set_lms_value(r / "ori_imgs" / f"{first_frame(r)}.lms", "nan")), "contains NaN or infinite values"),
    Case("data-lms-text", "fit", dataset_with(lambda r: set_lms_value(r / "ori_imgs" / f"{first_frame(r)}.lms", "x")), ".lms: not a table of numbers"),
    Case("data-landmarks-shape", "fit", dataset_with(lambda r: edit_npy(r / "aud_idexp.npy", lambda a: a[:, :60])), "aud_idexp.npy: shape"),
    Case("data-landmarks-short", "fit", dataset_with(lambda r: edit_npy(r / "aud_idexp.npy", lambda a: a[:5])), "aud_idexp.npy: 5 frames"),
    Case("data-audio-features-short", "fit", dataset_with(lambda r: edit_npy(r / "aud_mel.npy", lambda a: a[:5])), "aud_mel.npy: 5 frames"),
    Case("data-npy-garbage", "fit", dataset_with(lambda r: write_text(r / "aud_idexp.npy", "garbage")), "aud_idexp.npy: not a readable .npy file"),
    Case("data-checksum-mismatch", "fit",
         lambda w: w.fit_folder(w.dataset()) if set_lms_value(w.dataset() / "ori_imgs" / f"{first_frame(w.dataset())}.lms", "1.0") else [],
         "checksum differs from manifest.json"),
    # --- evaluate: run folders received from someone else
    Case("evaluate-crafted-checkpoint", "evaluate",
         lambda w: [f"run={w.run()}"] if write_crafted_checkpoint(w.run() / "checkpoints" / "last.ckpt", w.marker) else [],
         lambda w: f"{w.tmp / 'run' / 'checkpoints' / 'last.ckpt'}: refused: loading it would call"),
    Case("evaluate-truncated-checkpoint", "evaluate",
         lambda w: [f"run={w.run()}"] if truncate(w.run() / "checkpoints" / "last.ckpt") else [],
         lambda w: f"{w.tmp / 'run' / 'checkpoints' / 'last.ckpt'}: not a complete checkpoint"),
    Case("evaluate-checkpoint-of-other-shape", "evaluate",
         lambda w: [f"run={w.run()}"] if torch.save({"weights": torch.zeros(2)}, w.run() / "checkpoints" / "last.ckpt") is None else [],
         "last.ckpt: not a talker checkpoint (no state_dict)"),
    Case("evaluate-config-target-os-system", "evaluate", lambda w: [f"run={w.run()}"] if crafted_config(w.run()) else [],
         lambda w: f"{w.tmp / 'run' / 'config.yaml'}: model._target_=os.system: refused"),
    Case("evaluate-config-not-yaml", "evaluate", lambda w: [f"run={w.run()}"] if write_text(w.run() / "config.yaml", "{{{") else [],
         "config.yaml: not a readable config"),
    Case("evaluate-config-bad-value", "evaluate",
         lambda w: [f"run={w.run()}"] if write_text(w.run() / "config.yaml", (w.run() / "config.yaml").read_text().replace("num_rays: 128", "num_rays: -1")) else [],
         "config.yaml: data.num_rays=-1: must be an integer >= 1"),
    Case("evaluate-no-run-folder", "evaluate", lambda w: [f"run={w.tmp / 'nothing'}"], "config.yaml: missing"),
    Case("evaluate-resolution-abc", "evaluate", lambda w: [f"run={w.run()}", "resolution=abc"], "resolution=abc: must be an integer >= 16"),
    Case("evaluate-device-not-a-device", "evaluate", lambda w: [f"run={w.run()}", "device=gpu"], "device=gpu: not a device"),
    Case("evaluate-device-absent", "evaluate", lambda w: [f"run={w.run()}", "device=cuda:99"], "device=cuda:99: no such CUDA device here"),
    Case("evaluate-unknown-argument", "evaluate", lambda w: [f"run={w.run()}", "bogus=1"], "not understood: bogus=1"),
    Case("evaluate-frames-missing", "evaluate", lambda w: [f"frames={w.tmp / 'none'}"], "no such folder or video"),
    Case("evaluate-frames-empty", "evaluate", lambda w: [f"frames={Path(os.makedirs(w.tmp / 'f') or w.tmp / 'f')}"], "no images"),
    Case("evaluate-frames-garbled-png", "evaluate", lambda w: [f"frames={truncate(small_frames(w.tmp / 'f') / '1.png', 0.4).parent}"],
         lambda w: f"{w.tmp / 'f' / '1.png'}: not a readable image"),
    Case("evaluate-frames-text-as-video", "evaluate", lambda w: [f"frames={write_text(w.tmp / 'v.mp4', 'not a video')}"], "v.mp4: not a readable video"),
    Case("evaluate-reference-other-size", "evaluate",
         lambda w: [f"frames={small_frames(w.tmp / 'f', 16)}", f"reference={small_frames(w.tmp / 'r', 24)}"], "is 16x16, its reference 24x24"),
    # --- drive
    Case("drive-crafted-checkpoint", "drive", lambda w: [f"run={motion_with_crafted_checkpoint(w)}", f"audio={w.speech}"],
         lambda w: f"{w.tmp / 'motion' / 'checkpoints' / 'last.ckpt'}: refused: loading it would call"),
    Case("drive-crafted-motion-checkpoint", "drive",
         lambda w: [f"run={w.run()}", f"audio={w.speech}", f"motion={motion_with_crafted_checkpoint(w)}"],
         lambda w: f"{w.tmp / 'motion' / 'checkpoints' / 'last.ckpt'}: refused"),
    Case("drive-motion-config-target", "drive",
         lambda w: [f"run={w.run()}", f"audio={w.speech}", f"motion={motion_with_target(w, 'subprocess.Popen')}"],
         "model._target_=subprocess.Popen: refused"),
    Case("drive-audio-missing", "drive", lambda w: [f"run={w.run()}", f"audio={w.tmp / 'none.wav'}"], "none.wav: audio file does not exist"),
    Case("drive-audio-garbage", "drive", lambda w: [f"run={w.run()}", f"audio={write_text(w.tmp / 'x.wav', 'RIFF junk')}"], "x.wav: ffmpeg cannot decode it"),
    Case("drive-temperature-abc", "drive", lambda w: [f"run={w.run()}", f"audio={w.speech}", "temperature=abc"], "temperature=abc: must be a number >= 0"),
    Case("drive-smoothing-negative", "drive", lambda w: [f"run={w.run()}", f"audio={w.speech}", "smoothing=-2"], "smoothing=-2: must be a number >= 0"),
    Case("drive-device-absent", "drive", lambda w: [f"run={w.run()}", f"audio={w.speech}", "device=cuda:99"], "device=cuda:99: no such CUDA device"),
    Case("drive-motion-not-a-motion-run", "drive", lambda w: [f"run={w.run()}", f"audio={w.speech}", f"motion={w.run()}"], "not a motion run"),
    # --- the post-net stage reads a motion run (model.motion_run)
    Case("fit-postnet-crafted-motion-checkpoint", "fit",
         lambda w: postnet_args(w, motion_with_crafted_checkpoint(w)), lambda w: f"{w.tmp / 'motion' / 'checkpoints' / 'last.ckpt'}: refused"),
    # --- preprocess
    Case("preprocess-video-missing", "preprocess", lambda w: [f"video={w.tmp / 'none.mp4'}", f"out={w.tmp / 'out'}"], "none.mp4: file does not exist"),
    Case("preprocess-video-not-a-video", "preprocess", lambda w: [f"video={write_text(w.tmp / 'v.mp4', 'text')}", f"out={w.tmp / 'out'}"], "v.mp4: not a readable video"),
    Case("preprocess-size-abc", "preprocess", lambda w: ["video=v.mp4", "out=o", "size=abc"], "size=abc: must be an integer >= 0"),
    Case("preprocess-val-fraction-2", "preprocess", lambda w: ["video=v.mp4", "out=o", "val_fraction=2"], "val_fraction=2: must be a number in (0, 1)"),
    Case("preprocess-unknown-key", "preprocess", lambda w: ["video=v.mp4", "out=o", "sise=450"], "sise=450: not understood"),
    Case("preprocess-out-not-its-output", "preprocess",
         lambda w: [f"video={write_text(w.tmp / 'v.mp4', 'text')}", f"out={w.dataset()}"], "exists and is not a talker.preprocess output"),
    # --- audio features
    Case("audio-missing", "audio", lambda w: [str(w.tmp / "none.wav"), str(w.tmp / "o.npy")], "none.wav: audio file does not exist"),
    Case("audio-garbage", "audio", lambda w: [str(write_text(w.tmp / "x.mp3", "junk")), str(w.tmp / "o.npy")], "x.mp3: ffmpeg cannot decode it"),
    Case("audio-out-under-a-file", "audio", lambda w: [str(w.speech), f"{write_text(w.tmp / 'afile', 'x')}/o.npy"], lambda w: str(w.tmp / "afile")),
    # --- Wav2Lip's scorer
    Case("wav2lip-frames-missing", "wav2lip", lambda w: [f"frames={w.tmp / 'none.mp4'}"], "no such folder or video"),
    Case("wav2lip-frames-not-a-video", "wav2lip", lambda w: [f"frames={write_text(w.tmp / 'r.mp4', 'junk')}"], "r.mp4: not a readable video"),
]


def motion_with_crafted_checkpoint(w: World) -> Path:
    folder = w.config_only_run(MOTION_TINY, "motion")
    write_crafted_checkpoint(folder / "checkpoints" / "last.ckpt", w.marker)
    return folder


def motion_with_target(w: World, target: str) -> Path:
    folder = motion_with_crafted_checkpoint(w)
    config = folder / "config.yaml"
    config.write_text(config.read_text().replace("_target_: talker.modules.motion.MotionModule", f"_target_: {target}", 1))
    return folder


def postnet_args(w: World, motion: Path) -> list[str]:
    tiny = [o for o in MOTION_TINY if not o.startswith(("experiment=", "generator.", "model."))]
    return ["experiment=postnet", *tiny, f"model.motion_run={motion}", f"paths.data_dir={w.data_dir}", f"paths.runs_dir={w.tmp / 'runs'}"]


# ---- running a case ----------------------------------------------------------------------------------

def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*") if p.is_file() and HYDRA_RECORD not in p.relative_to(folder).parts
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A tiny head run (landmark-conditioned), 4 steps, evaluated."""
    root = tmp_path_factory.mktemp("trained")
    return train(compose_config([*TINY, f"paths.data_dir={data_dir}", f"run_dir={root / 'run'}", "trainer.max_steps=4"]))


@pytest.fixture()
def world(tmp_path: Path, tiny_clip: Path, trained: Path, tiny_speech: dict[str, Path], data_dir: Path) -> World:
    return World(tmp=tmp_path / "case", clip=tiny_clip, trained=trained, speech=tiny_speech["a"], data_dir=data_dir)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_ends_in_one_line_and_loses_nothing(case: Case, world: World, capsys: pytest.CaptureFixture) -> None:
    world.tmp.mkdir()
    argv = case.setup(world)
    watched = [world.tmp, world.trained, world.clip]
    before = [snapshot(folder) for folder in watched]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        _tool(case.tool)(argv)
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    expected = case.expect(world) if callable(case.expect) else case.expect
    assert exit_info.value.code == case.status, err
    assert "Traceback" not in err + out, err
    assert [line for line in lines if ": error: " in line] == lines[-1:], err  # one error line, the last
    assert lines[-1].startswith(f"{_prog(case.tool)}: error: "), lines[-1]
    assert expected in lines[-1], lines[-1]
    for folder, old in zip(watched, before):  # nothing that existed before changed
        new = snapshot(folder)
        assert {k: new.get(k) for k in old} == old, folder
    assert not world.marker.exists(), "a crafted file ran its code"


def _prog(tool: str) -> str:
    return {"audio": "python -m talker.audio", "wav2lip": "talker.baselines.wav2lip"}.get(tool, f"talker.{tool}")


def test_catalogue_size() -> None:
    """The issue's review tried 60 inputs; the catalogue keeps at least as many, each with a distinct id."""
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)


def test_debug_variable_shows_the_traceback(world: World, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    import talker.evaluate as evaluate_cli

    world.tmp.mkdir()
    monkeypatch.setenv("TALKER_DEBUG", "1")
    with pytest.raises(SystemExit):
        evaluate_cli.main([f"run={world.tmp / 'nothing'}"])
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("talker.evaluate: error: ")


def test_unexpected_errors_keep_their_traceback(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug is not an expected failure: it is not reduced to one line."""
    import talker.evaluate as evaluate_cli

    world.tmp.mkdir()
    monkeypatch.setattr(evaluate_cli, "evaluate_run", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        evaluate_cli.main([f"run={world.tmp}"])


def test_entry_point_in_a_subprocess(world: World) -> None:
    """The same through ``python -m`` (Hydra's own error handling around the task function included):
    a damaged dataset found inside the Hydra run, and a garbled image."""
    world.tmp.mkdir()
    root = drop_manifest(world.dataset())
    garble_jpeg_body(root / "gt_imgs" / f"{first_frame(root)}.jpg")
    proc = subprocess.run(
        [sys.executable, "-m", "talker.fit", *world.fit_folder(root)], capture_output=True, text=True, timeout=300,
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and lines[-1].startswith("talker.fit: error: ")
    assert f"gt_imgs/{first_frame(root)}.jpg: not a readable image" in lines[-1]


# ---- faults that end well: the rerun resumes from the last good checkpoint --------------------------

@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    run = tmp_path_factory.mktemp("straight") / "run"
    return train(compose_config([*TINY, f"paths.data_dir={data_dir}", f"run_dir={run}", "trainer.max_steps=6"]))


def assert_same_result(run: Path, reference: Path) -> None:
    ours, theirs = (json.loads((r / "metrics.json").read_text()) for r in (run, reference))
    assert ours["global_step"] == theirs["global_step"] == 6
    assert ours["metrics"] == theirs["metrics"]
    assert (run / "frames.csv").read_bytes() == (reference / "frames.csv").read_bytes()
    final, expected = (load_checkpoint(r / "checkpoints" / "last.ckpt")["state_dict"] for r in (run, reference))
    for key in expected:
        torch.testing.assert_close(final[key], expected[key], rtol=0, atol=0, msg=key)


def fit_overrides(data_dir: Path, run: Path, steps: int) -> list[str]:
    return [*TINY, f"paths.data_dir={data_dir}", f"run_dir={run}", f"trainer.max_steps={steps}"]


@pytest.mark.parametrize("disk", ["injected", "tmpfs"])
def test_full_disk_during_a_fit_loses_nothing_and_the_rerun_matches(
    disk: str, uninterrupted: Path, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mount_tmpfs,
) -> None:
    """The checkpoint write at step 4 meets a full disk: the fit stops with one line naming the file,
    last.ckpt still holds step 2, no temporary file is left; the same command, once there is room,
    resumes from step 2 and ends exactly as the uninterrupted run."""
    run = tmp_path / "run"
    folder = run / "checkpoints"
    size = (uninterrupted / "checkpoints" / "last.ckpt").stat().st_size
    if disk == "tmpfs":  # room for last.ckpt and its previous copy, not for a third file
        mount_tmpfs(folder, int(size * 2.5))
    train(compose_config(fit_overrides(data_dir, run, 2)))
    step_two = (folder / "last.ckpt").read_bytes()
    if disk == "injected":
        real_open = open

        def full_disk(path, mode="r", *args, **kwargs):
            if "w" in mode and ".tmp-" in str(path):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            return real_open(path, mode, *args, **kwargs)

        monkeypatch.setattr(checkpoints, "open", full_disk, raising=False)
    with pytest.raises(checkpoints.CheckpointError) as error:
        train(compose_config(fit_overrides(data_dir, run, 6)))
    message = str(error.value)
    assert f"{folder / 'last.ckpt'}: not written (No space left on device)" in message and "\n" not in message
    assert (folder / "last.ckpt").read_bytes() == step_two
    assert not [p for p in folder.iterdir() if ".tmp-" in p.name]
    # room again (the user frees space) -> the same command resumes from step 2
    monkeypatch.undo()
    if disk == "tmpfs":
        subprocess.run(["mount", "-o", f"remount,size={size * 4}", str(folder)], check=True)
    train(compose_config(fit_overrides(data_dir, run, 6)))
    assert_same_result(run, uninterrupted)


@pytest.mark.parametrize("damage", ["truncated", "crafted"])
def test_a_last_checkpoint_that_does_not_load_is_moved_aside_and_the_run_resumes(
    damage: str, uninterrupted: Path, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A last.ckpt cut short (a copy that stopped half-way) or crafted to run code: the relaunched fit
    moves it aside (bytes kept), resumes from the newest checkpoint that loads, runs no code, and
    ends exactly as the uninterrupted run."""
    run = tmp_path / "run"
    train(compose_config(fit_overrides(data_dir, run, 4)))
    last = run / "checkpoints" / "last.ckpt"
    marker = tmp_path / "CODE_RAN"
    if damage == "truncated":
        truncate(last)
    else:
        write_crafted_checkpoint(last, marker)
    damaged = last.read_bytes()
    notes: list[str] = []
    monkeypatch.setattr(fit_module, "rank_zero_info", notes.append)  # what the user reads on stderr
    train(compose_config(fit_overrides(data_dir, run, 6)))
    aside = list(run.glob("checkpoints/last.ckpt.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == damaged
    assert not marker.exists()
    assert any("moved to last.ckpt.corrupt-" in line for line in notes), notes
    assert any("resuming from" in line and "last-previous.ckpt (step 4)" in line for line in notes), notes
    assert_same_result(run, uninterrupted)


def test_a_damaged_metrics_file_means_the_run_is_evaluated_again(world: World) -> None:
    """A finished run whose metrics.json was cut short is not skipped: it resumes from its checkpoint
    (at max_steps already: no further step) and writes the same metrics again."""
    world.tmp.mkdir()
    run = world.run()
    truncate(run / "metrics.json")
    train(compose_config([*TINY, f"paths.data_dir={world.data_dir}", f"run_dir={run}", "trainer.max_steps=4"]))
    again, original = (json.loads((r / "metrics.json").read_text()) for r in (run, world.trained))
    assert again["global_step"] == 4 and again["metrics"] == original["metrics"]


READ_ONLY = {
    "fit": lambda w, ro: w.fit(f"paths.runs_dir={ro / 'runs'}"),
    "evaluate": lambda w, ro: [f"run={ro / 'run'}"],
    "preprocess": lambda w, ro: [f"video={write_text(w.tmp / 'v.mp4', 'text')}", f"out={ro / 'dataset'}"],
    "audio": lambda w, ro: [str(w.speech), str(ro / "features.npy")],
}


@pytest.mark.parametrize("tool", list(READ_ONLY))
def test_a_read_only_file_system_is_one_line(tool: str, world: World, mount_tmpfs, capsys: pytest.CaptureFixture) -> None:
    """Outputs on a read-only file system (a finished run copied there): one line naming the folder
    or file, before any work; nothing changes. Needs a tmpfs that can be remounted read-only (root
    ignores file permissions, so chmod cannot stand in for it)."""
    world.tmp.mkdir()
    ro = mount_tmpfs(world.tmp / "ro", 64 * 2**20)
    shutil.copytree(world.trained, ro / "run")
    subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True, capture_output=True)
    argv = READ_ONLY[tool](world, ro)
    before = snapshot(ro)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        _tool(tool)(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert exit_info.value.code == 2 and "Traceback" not in err, err
    assert [line for line in lines if ": error: " in line] == lines[-1:], err
    assert str(ro) in lines[-1] and "Read-only file system" in lines[-1], lines[-1]
    assert snapshot(ro) == before
