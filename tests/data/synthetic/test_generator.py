"""The generated dataset: reproducible bytes, complete layout, files that agree with each other."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from talker.data.cameras import nerf_to_ngp, project
from talker.data.layout import eye_area_ratio, validate_dataset
from talker.data.synthetic import SyntheticClip
from talker.data.synthetic.generator import SCALE, TRUTH
from talker.data.synthetic.scene import PARSING_COLOURS


def checksums(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())["files"]


def test_same_seed_same_bytes_whatever_the_workers(tmp_path: Path) -> None:
    a = SyntheticClip(num_frames=6, resolution=24, workers=1).ensure(tmp_path / "a")
    b = SyntheticClip(num_frames=6, resolution=24, workers=2).ensure(tmp_path / "b")
    assert a.name == b.name and checksums(a) == checksums(b)
    c = SyntheticClip(num_frames=6, resolution=24, seed=1).ensure(tmp_path / "a")
    assert c != a and checksums(c) != checksums(a)


def test_reuses_an_existing_clip(tmp_path: Path) -> None:
    clip = SyntheticClip(num_frames=6, resolution=24)
    first = clip.ensure(tmp_path)
    stamp = (first / "manifest.json").stat().st_mtime_ns
    assert clip.ensure(tmp_path) == first
    assert (first / "manifest.json").stat().st_mtime_ns == stamp


def test_regenerates_a_corrupted_clip(tmp_path: Path) -> None:
    clip = SyntheticClip(num_frames=6, resolution=24)
    folder = clip.ensure(tmp_path)
    good = checksums(folder)
    (folder / "gt_imgs" / "2.jpg").write_bytes(b"broken")
    assert clip.ensure(tmp_path) == folder
    assert checksums(folder) == good and (folder / "gt_imgs" / "2.jpg").read_bytes() != b"broken"


def test_layout_is_complete(tiny_clip: Path) -> None:
    validate_dataset(tiny_clip)
    manifest = json.loads((tiny_clip / "manifest.json").read_text())
    assert manifest["version"] == 2 and manifest["num_frames"] == 12 and manifest["seed"] == 0
    assert manifest["params"]["identity"] == "ada" and "workers" not in manifest["params"]
    assert set(manifest["files"]) == {
        str(p.relative_to(tiny_clip)) for p in tiny_clip.rglob("*") if p.is_file()
    } - {"manifest.json"}
    assert np.load(tiny_clip / "aud_mel.npy").shape == (12, 16, 80)
    assert np.load(tiny_clip / "aud_idexp_train.npy").shape == (9, 68, 3)
    assert np.load(tiny_clip / "aud_idexp_val.npy").shape == (3, 68, 3)
    for sub, mode in (("torso_imgs", "RGBA"), ("head_imgs", "RGBA"), ("parsing", "RGB"), ("gt_imgs", "RGB")):
        suffix = "jpg" if sub == "gt_imgs" else "png"
        assert Image.open(tiny_clip / sub / f"5.{suffix}").mode == mode


def test_landmark_files_agree_with_poses_and_intrinsics(tiny_clip: Path) -> None:
    """ori_imgs/*.lms = aud_idexp.npy projected through transform_matrix and focal_len / cx / cy."""
    canonical = torch.from_numpy(np.load(tiny_clip / "aud_idexp.npy")).double()
    for split in ("train", "val"):
        meta = json.loads((tiny_clip / f"transforms_{split}.json").read_text())
        intrinsics = torch.tensor(
            [meta["focal_len"], meta["focal_len"], meta["cx"], meta["cy"]], dtype=torch.float64
        )
        for frame in meta["frames"]:
            c2w = torch.from_numpy(nerf_to_ngp(np.asarray(frame["transform_matrix"]), SCALE))
            projected = project(canonical[frame["aud_id"]], c2w, intrinsics).numpy() - 0.5
            lms = np.loadtxt(tiny_clip / "ori_imgs" / f"{frame['img_id']}.lms")
            np.testing.assert_allclose(lms, projected, atol=2e-3)
            assert frame["eye_ratio"] == pytest.approx(eye_area_ratio(lms, meta["h"], meta["w"]))


def test_gt_is_the_composite_of_the_layers(tiny_clip: Path) -> None:
    bc = np.asarray(Image.open(tiny_clip / "bc.jpg"), dtype=np.float64) / 255
    for i in range(12):
        head = np.asarray(Image.open(tiny_clip / "head_imgs" / f"{i}.png"), dtype=np.float64) / 255
        torso = np.asarray(Image.open(tiny_clip / "torso_imgs" / f"{i}.png"), dtype=np.float64) / 255
        gt = np.asarray(Image.open(tiny_clip / "gt_imgs" / f"{i}.jpg"), dtype=np.float64) / 255
        assert not torso[..., 3][head[..., 3] == 1].any()  # the torso layer is transparent under the head
        behind = torso[..., 3:] * torso[..., :3] + (1 - torso[..., 3:]) * bc
        composite = head[..., 3:] * head[..., :3] + (1 - head[..., 3:]) * behind
        error = np.abs(composite - gt)
        assert error.mean() < 2.5 / 255 and np.percentile(error, 99) < 12 / 255, (
            i
        )  # JPEG (q95) + 8-bit layers
        assert np.array_equal(np.asarray(Image.open(tiny_clip / "ori_imgs" / f"{i}.jpg")), np.round(gt * 255))


def test_parsing_agrees_with_the_layers(tiny_clip: Path) -> None:
    colours = {name: np.array(rgb) for name, rgb in PARSING_COLOURS.items()}
    for i in range(12):
        parsing = np.asarray(Image.open(tiny_clip / "parsing" / f"{i}.png"))
        head = np.asarray(Image.open(tiny_clip / "head_imgs" / f"{i}.png"))[..., 3] / 255
        body = np.asarray(Image.open(tiny_clip / "torso_imgs" / f"{i}.png"))[..., 3] / 255
        is_head = (parsing == colours["head"]).all(-1)
        is_body = (parsing == colours["neck"]).all(-1) | (parsing == colours["torso"]).all(-1)
        is_background = (parsing == colours["background"]).all(-1)
        assert (is_head | is_body | is_background).all()
        clear = np.abs(head - 0.5) > 0.02
        assert np.array_equal(is_head[clear], head[clear] > 0.5)
        clear = ~is_head & (np.abs(body - 0.5) > 0.02)
        assert np.array_equal(is_body[clear], body[clear] > 0.5)
        assert is_head.sum() > 0.1 * head.size and is_body.sum() > 0.05 * head.size


def test_truth_file(tiny_clip: Path) -> None:
    truth = np.load(tiny_clip / TRUTH)
    assert truth["eye_open"].shape == (12,) and truth["lips_rect"].shape == (12, 4)
    assert truth["head_rotation"].shape == (12, 3, 3) and truth["torso_translation"].shape == (12, 3)
    lms = np.stack([np.loadtxt(tiny_clip / "ori_imgs" / f"{i}.lms") for i in range(12)])
    y0, y1, x0, x1 = truth["lips_rect"].T
    # The rendered lips box contains the projected outer-lip landmarks (up to a pixel of coverage).
    assert (lms[:, 48:60, 0].min(1) >= x0 - 1.5).all() and (lms[:, 48:60, 0].max(1) <= x1 + 0.5).all()
    assert (lms[:, 48:60, 1].min(1) >= y0 - 1.5).all() and (lms[:, 48:60, 1].max(1) <= y1 + 0.5).all()
    au = np.genfromtxt(tiny_clip / "au.csv", delimiter=",", names=True)
    np.testing.assert_allclose(au["AU45_r"], 2 * (1 - truth["eye_open"]), atol=1e-4)


def test_bad_parameters_name_the_key() -> None:
    with pytest.raises(ValueError, match="data.synthetic.identity='zed': unknown identity"):
        SyntheticClip(identity="zed")
    with pytest.raises(ValueError, match="data.synthetic.num_frames must be at least 4"):
        SyntheticClip(num_frames=2)


def aligned_crops(root: Path, centre: slice | list[int], frames: int, size: int = 16) -> np.ndarray:
    """Crops of a fixed size on the face, centred on the mean of the given landmarks (follow the head)."""
    out = []
    for i in range(frames):
        lms = np.loadtxt(root / "ori_imgs" / f"{i}.lms")
        half = 0.2 * (lms[45, 0] - lms[36, 0])  # eye corners do not move with the expression
        cx, cy = lms[centre].mean(0) + 0.5
        image = Image.open(root / "gt_imgs" / f"{i}.jpg")
        out.append(
            np.asarray(
                image.resize((size, size), Image.BILINEAR, box=(cx - half, cy - half, cx + half, cy + half))
            )
            / 255
        )
    return np.stack(out)


def test_the_mouth_region_varies_much_more_than_the_cheek(tmp_path: Path) -> None:
    root = SyntheticClip(num_frames=50, resolution=64).ensure(tmp_path)
    mouth = aligned_crops(root, slice(48, 68), 50).std(0).mean()
    cheek = aligned_crops(root, [2, 31], 50).std(0).mean()
    forehead = aligned_crops(root, [19, 24], 50).std(0).mean()
    assert mouth > 0.04 and mouth > 3 * max(cheek, forehead), (mouth, cheek, forehead)


def test_identities_look_different_and_share_a_driving_voice(tmp_path: Path) -> None:
    folders = {
        name: SyntheticClip(num_frames=6, resolution=32, identity=name, audio="babble:mid").ensure(tmp_path)
        for name in ("ada", "bo", "cy", "dee")
    }
    truths = {name: np.load(folder / TRUTH) for name, folder in folders.items()}
    frames = {
        name: np.asarray(Image.open(folder / "gt_imgs" / "3.jpg"), dtype=np.float64)
        for name, folder in folders.items()
    }
    for name in ("bo", "cy", "dee"):
        np.testing.assert_array_equal(
            truths[name]["mouth_open"], truths["ada"]["mouth_open"]
        )  # same audio, same mouth
        assert np.abs(frames[name] - frames["ada"]).mean() > 10  # different person, clothes and room
    own_voice = SyntheticClip(num_frames=25, resolution=16, identity="bo").ensure(tmp_path)  # bo's voice: low
    mid_voice = SyntheticClip(num_frames=25, resolution=16, identity="bo", audio="babble:mid").ensure(
        tmp_path
    )
    assert (own_voice / "aud.wav").read_bytes() != (mid_voice / "aud.wav").read_bytes()


def test_failed_generation_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from talker.data.synthetic import generator

    real_render = generator.render_frame

    def render_until_frame_three(*args, **kwargs):
        if len(list((tmp_path / "synthetic").rglob("*.lms"))) >= 3:
            raise KeyboardInterrupt  # the user gives up half way
        return real_render(*args, **kwargs)

    monkeypatch.setattr(generator, "render_frame", render_until_frame_three)
    with pytest.raises(KeyboardInterrupt):
        SyntheticClip(num_frames=6, resolution=16, workers=1).ensure(tmp_path)
    assert list((tmp_path / "synthetic").iterdir()) == []
