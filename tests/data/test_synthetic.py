import json
from pathlib import Path

import numpy as np
from PIL import Image

from talker.data.synthetic import SyntheticClip


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a = SyntheticClip(num_frames=6, resolution=24).ensure(tmp_path / "a")
    b = SyntheticClip(num_frames=6, resolution=24).ensure(tmp_path / "b")
    assert json.loads((a / "manifest.json").read_text())["files"] == json.loads((b / "manifest.json").read_text())["files"]
    c = SyntheticClip(num_frames=6, resolution=24, seed=1).ensure(tmp_path / "a")
    assert c != a and (a / "manifest.json").is_file()


def test_reuses_an_existing_clip(tmp_path: Path) -> None:
    clip = SyntheticClip(num_frames=6, resolution=24)
    first = clip.ensure(tmp_path)
    stamp = (first / "manifest.json").stat().st_mtime_ns
    assert clip.ensure(tmp_path) == first
    assert (first / "manifest.json").stat().st_mtime_ns == stamp


def test_face_landmarks_land_on_the_head(tiny_clip: Path) -> None:
    for i in range(12):
        lms = np.loadtxt(tiny_clip / "ori_imgs" / f"{i}.lms")
        parsing = np.asarray(Image.open(tiny_clip / "parsing" / f"{i}.png"))
        for x, y in np.round(lms[17:68]).astype(int):  # brows, nose, eyes, mouth: inside the face
            assert tuple(parsing[y, x]) == (0, 0, 255), (i, x, y)


def test_mouth_follows_the_audio(tiny_clip: Path) -> None:
    lm = np.load(tiny_clip / "aud_idexp.npy")
    opening = np.linalg.norm(lm[:, [65, 66, 67]] - lm[:, [63, 62, 61]], axis=-1).mean(-1)
    assert opening.max() - opening.min() > 0.02  # the mouth opens and closes over the clip
