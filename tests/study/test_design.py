"""Study creation: blind ids, stripped clips, attention checks, and the balanced rater orders."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from talker.study.create import create_study, discover
from talker.study.design import Item, Study, StudyError, load_study, williams_square
from tests.study.conftest import SETTINGS, SYSTEMS, make_grid


def test_discovers_every_driven_video_of_the_grid(grid: Path) -> None:
    sources, datasets = discover([grid])
    assert sorted((s.method, s.clip) for s in sources) == sorted((m, c) for m in SYSTEMS for c in SETTINGS)
    assert datasets == []


def test_study_folder_is_blind(study_dir: Path) -> None:
    study = load_study(study_dir)
    assert study.methods == sorted(SYSTEMS) and study.clips == sorted(SETTINGS)
    assert Counter(i.kind for i in study.items) == {"method": 6, "ground_truth": 1, "broken": 1}
    for item in study.items:
        path = study.media_path(item)
        assert path.name == f"{item.id}.mp4" and path.is_file()
        data = path.read_bytes()
        for secret in (*SYSTEMS, *SETTINGS, "system=", "cross", "baselines"):
            assert secret.encode() not in data, f"{path} holds {secret!r}"


def test_clips_are_cut_to_the_study_length(grid: Path, tmp_path: Path) -> None:
    from talker.utils.media import read_video

    long_grid = make_grid(tmp_path / "runs", systems=("a", "b"), settings=("s",), seconds=2.0)
    study = create_study([long_grid], tmp_path / "study", seconds=0.6, broken=False)
    frames, fps = read_video(study.media_path(study.items[0]))
    assert fps == 25 and len(frames) == 15


def test_broken_clip_is_pixelated(study_dir: Path) -> None:
    import numpy as np

    from talker.utils.media import read_video

    study = load_study(study_dir)
    broken = next(i for i in study.items if i.kind == "broken")
    frames, _ = read_video(study.media_path(broken))
    frame = frames[len(frames) // 2].astype(int)
    # 8x8 blocks of one colour (up to the codec's noise): neighbours inside a block agree
    inside = np.abs(frame[:, 1::8] - frame[:, 0::8][:, : frame[:, 1::8].shape[1]]).mean()
    assert inside < 3.0


def test_create_refuses_an_existing_study_and_unknown_criteria(study_dir: Path, grid: Path, tmp_path: Path) -> None:
    with pytest.raises(StudyError, match="holds a study already"):
        create_study([grid], study_dir)
    with pytest.raises(StudyError, match="unknown"):
        create_study([grid], tmp_path / "x", criteria=["lip_sync", "beauty"])
    with pytest.raises(StudyError, match="no driven videos"):
        create_study([grid], tmp_path / "y", clips=["self_driven"])
    with pytest.raises(StudyError, match="method 'er_nerf' has 2 clips for 'cross_gender'"):
        create_study([grid, grid], tmp_path / "z")  # the same grid twice: which clip would it be?
    assert not any((tmp_path / name).exists() for name in "xyz")


def test_a_damaged_study_file_fails_in_one_line(study_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "study.json").write_text("{")
    with pytest.raises(StudyError, match="study.json: not a talker study"):
        load_study(tmp_path)
    raw = json.loads((study_dir / "study.json").read_text())
    raw["items"][0]["id"] = "r2talker-clip"
    (tmp_path / "study.json").write_text(json.dumps(raw))
    with pytest.raises(StudyError, match="not a blind id"):
        load_study(tmp_path)


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_williams_square_is_latin_and_carryover_balanced(n: int) -> None:
    rows = williams_square(n)
    assert len(rows) == (n if n % 2 == 0 else 2 * n)
    for column in zip(*rows):
        assert Counter(column) == {m: len(rows) // n for m in range(n)}
    pairs = Counter((a, b) for row in rows for a, b in zip(row, row[1:]))
    assert set(pairs.values()) == {len(rows) // n} and len(pairs) == n * (n - 1)


def _study(methods: int, clips: int, checks: int = 2) -> Study:
    items = [Item(f"{m:08x}{c:08x}", "method", f"clip{c}", "", f"m{m}") for m in range(methods) for c in range(clips)]
    items += [Item(f"ffffffff{k:08x}", "ground_truth" if k == 0 else "broken", "gt", "") for k in range(checks)]
    return Study(Path("."), "t", (), tuple(items))


@pytest.mark.parametrize("methods,clips", [(3, 2), (4, 3), (5, 1)])
def test_orders_balance_methods_over_positions(methods: int, clips: int) -> None:
    study = _study(methods, clips)
    block = len(williams_square(methods))
    seen = Counter()
    for rater in range(2 * block):
        order = study.order(rater)
        assert sorted(order) == sorted(i.id for i in study.items)  # every clip once
        assert order[0] != "ffffffff00000000" and order[0] != "ffffffff00000001"  # never a check first
        method_items = [study.item(b) for b in order if study.item(b).kind == "method"]
        seen.update((position, item.method) for position, item in enumerate(method_items))
    positions = methods * clips
    assert seen == {(p, f"m{m}"): 2 * block // methods for p in range(positions) for m in range(methods)}


def test_orders_differ_between_raters_and_are_reproducible() -> None:
    study = _study(3, 2)
    assert study.order(0) == study.order(0)
    assert len({tuple(study.order(r)) for r in range(6)}) == 6


def test_self_driven_renders_become_clips_with_the_held_out_audio(data_dir: Path, tmp_path: Path) -> None:
    """Two run folders with renders/ of a dataset's held-out frames; the dataset gives the ground-truth check."""
    from PIL import Image

    from talker.data.layout import read_transforms
    from talker.data.synthetic import SyntheticClip
    from talker.utils.media import read_audio, read_video

    dataset = SyntheticClip(num_frames=40, resolution=32, val_fraction=0.5).ensure(data_dir)
    ids = [int(f["img_id"]) for f in read_transforms(dataset, "val")["frames"]]
    for system in ("r2talker", "rad_nerf"):
        run = tmp_path / "runs" / f"system={system}"
        (run / "renders").mkdir(parents=True)
        for i in ids:
            Image.open(dataset / "gt_imgs" / f"{i}.jpg").save(run / "renders" / f"{i}.png")
        (run / "metrics.json").write_text(json.dumps({"metrics": {}, "dataset": str(dataset)}))
        (run / ".hydra").mkdir()
        (run / ".hydra" / "hydra.yaml").write_text(f"hydra:\n  runtime:\n    choices:\n      system: {system}\n")
    study = create_study([tmp_path / "runs"], tmp_path / "study", seconds=None, broken=False)
    assert study.methods == ["r2talker", "rad_nerf"] and study.clips == ["self_driven"]
    (gt,) = [i for i in study.items if i.kind == "ground_truth"]
    for item in study.items:
        frames, _ = read_video(study.media_path(item))
        assert len(frames) == len(ids)
        seconds = len(read_audio(study.media_path(item))) / 16000
        assert seconds == pytest.approx(len(ids) / 25, abs=0.05)  # the held-out frames' stretch of aud.wav
    assert gt.source == str(dataset)
