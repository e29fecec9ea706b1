import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from talker.data.layout import DatasetError, load_split, validate_dataset


@pytest.fixture()
def clip(tiny_clip: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "clip"
    shutil.copytree(tiny_clip, copy)
    return copy


def test_generated_clip_validates_and_loads(clip: Path) -> None:
    validate_dataset(clip)
    train, val = load_split(clip, "train"), load_split(clip, "val")
    assert len(train) + len(val) == 12
    assert train.images.shape[1:] == (32, 32, 3) and train.poses.shape[1:] == (4, 4)
    assert train.landmarks.shape[1:] == (68, 3) and train.landmarks.shape[0] > int(train.aud_ids.max())


def test_missing_frame_is_named(clip: Path) -> None:
    (clip / "gt_imgs" / "3.jpg").unlink()
    with pytest.raises(DatasetError, match=r"gt_imgs/3\.jpg: missing"):
        validate_dataset(clip)


def test_landmark_count_mismatch_is_named(clip: Path) -> None:
    np.save(clip / "aud_idexp.npy", np.zeros((5, 68, 3), dtype=np.float32))
    with pytest.raises(DatasetError, match=r"aud_idexp\.npy: 5 frames, but the dataset has 12 \(frame count mismatch\)"):
        validate_dataset(clip, check_checksums=False)


def test_nan_landmarks_are_named(clip: Path) -> None:
    lms = np.load(clip / "aud_idexp.npy")
    lms[2, 5, 1] = np.nan
    np.save(clip / "aud_idexp.npy", lms)
    with pytest.raises(DatasetError, match="aud_idexp.npy: contains NaN"):
        validate_dataset(clip)


def test_checksum_mismatch_is_named(clip: Path) -> None:
    path = clip / "torso_imgs" / "1.png"
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(DatasetError, match=r"torso_imgs/1\.png: checksum differs"):
        validate_dataset(clip)


def test_missing_transform_key_is_named(clip: Path) -> None:
    meta = json.loads((clip / "transforms_val.json").read_text())
    del meta["frames"][0]["transform_matrix"]
    (clip / "transforms_val.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match="transforms_val.json: frame 0 has no 'transform_matrix'"):
        validate_dataset(clip, check_checksums=False)


def test_audio_feature_count_mismatch_is_named(clip: Path) -> None:
    features = np.load(clip / "aud_mel.npy")
    np.save(clip / "aud_mel.npy", features[:10])
    with pytest.raises(DatasetError, match=r"aud_mel\.npy: 10 frames, but the dataset has 12 \(frame count mismatch\)"):
        validate_dataset(clip, check_checksums=False)
    # A dataset without a manifest (another codebase's) only needs every aud_id covered.
    (clip / "manifest.json").unlink()
    with pytest.raises(DatasetError, match=r"aud_mel\.npy: 10 frames, but transforms_val\.json refers to aud_id 11"):
        validate_dataset(clip)
    np.save(clip / "aud_mel.npy", np.concatenate([features, features[:1]]))  # one extra window is fine
    validate_dataset(clip)


def test_transforms_disagreeing_with_the_manifest_are_named(clip: Path) -> None:
    meta = json.loads((clip / "transforms_val.json").read_text())
    meta["frames"] = meta["frames"][:-1]
    (clip / "transforms_val.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match="transforms list 11 frames, manifest.json says 12"):
        validate_dataset(clip)


def test_nan_audio_features_are_named(clip: Path) -> None:
    features = np.load(clip / "aud_mel.npy")
    features[4, 3, 2] = np.nan
    np.save(clip / "aud_mel.npy", features)
    with pytest.raises(DatasetError, match=r"aud_mel\.npy: contains NaN"):
        validate_dataset(clip)


def test_bad_image_landmarks_are_named(clip: Path) -> None:
    lms = np.loadtxt(clip / "ori_imgs" / "7.lms")
    lms[3, 0] = np.nan
    np.savetxt(clip / "ori_imgs" / "7.lms", lms)
    with pytest.raises(DatasetError, match=r"ori_imgs/7\.lms: contains NaN"):
        validate_dataset(clip)
    np.savetxt(clip / "ori_imgs" / "7.lms", lms[:60])
    with pytest.raises(DatasetError, match=r"ori_imgs/7\.lms: shape \(60, 2\), expected 68 rows"):
        validate_dataset(clip)


def test_image_size_mismatch_is_named(clip: Path) -> None:
    from PIL import Image

    Image.new("RGBA", (16, 16)).save(clip / "torso_imgs" / "4.png")
    with pytest.raises(DatasetError, match=r"torso_imgs/4\.png: size \(16, 16\) differs from bc\.jpg \(32, 32\)"):
        validate_dataset(clip)


def test_file_listed_in_the_manifest_but_missing_is_named(clip: Path) -> None:
    (clip / "aud.wav").unlink()
    with pytest.raises(DatasetError, match=r"aud\.wav: listed in manifest\.json but missing"):
        validate_dataset(clip)
