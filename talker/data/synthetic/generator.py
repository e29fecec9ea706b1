"""Synthetic talking-head clip: talker's embedded default dataset, with exact ground truth.

``SyntheticClip(...).ensure(cache_dir)`` returns the dataset folder for its parameters, generating
it on first use (into a temporary folder that is renamed when complete, so an interrupted run never
leaves a half-written dataset behind). The folder name carries a hash of the parameters, so a
changed parameter never reuses stale data.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.io import wavfile
from scipy.spatial.transform import Rotation
from tqdm import tqdm

from talker.data.cameras import ngp_to_nerf
from talker.data.layout import LANDMARKS_ALL, MANIFEST, DatasetError, sha256, validate_dataset
from talker.data.synthetic.face import IDENTITIES, FaceState, landmarks_3d
from talker.data.synthetic.scene import PARSING_COLOURS, background_image, camera_to_world, render_frame
from talker.data.synthetic.speech import FPS, SAMPLE_RATE, babble, load_wav, mouth_track
from talker.utils.io import to_uint8

GENERATOR_VERSION = 1
# Raw (NeRF-json) units are head-space units / SCALE, matching RAD-NeRF's default --scale 4.
SCALE = 4.0


@dataclass(frozen=True)
class SyntheticClip:
    """Parameters of a synthetic clip. Same parameters, same bytes.

    Args:
        num_frames: video length at 25 fps.
        resolution: square frame size in pixels.
        seed: drives head motion, blinks, background and the procedural audio.
        identity: a key of ``talker.data.synthetic.face.IDENTITIES``.
        audio: a wav file to drive the mouth, or None for built-in procedural speech.
        val_fraction: the last ``val_fraction`` of the clip is held out as transforms_val.json.
        fov_deg: vertical field of view of the camera.
        supersample: rays per pixel per axis (anti-aliasing).
    """

    num_frames: int = 250
    resolution: int = 128
    seed: int = 0
    identity: str = "ada"
    audio: str | None = None
    val_fraction: float = 0.1
    fov_deg: float = 24.0
    supersample: int = 2

    def __post_init__(self) -> None:
        if self.identity not in IDENTITIES:
            raise ValueError(f"unknown synthetic identity {self.identity!r}; choices: {sorted(IDENTITIES)}")
        if self.num_frames < 4:
            raise ValueError(f"num_frames must be at least 4, got {self.num_frames}")

    @property
    def name(self) -> str:
        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]
        return f"{self.identity}-{self.resolution}px-{self.num_frames}f-s{self.seed}-{digest}"

    def dataset_dir(self, cache_dir: str | Path) -> Path:
        return Path(cache_dir) / "synthetic" / self.name

    def ensure(self, cache_dir: str | Path) -> Path:
        """The dataset folder under ``cache_dir``; generated if absent, regenerated if corrupt."""
        out = self.dataset_dir(cache_dir)
        if out.is_dir():
            try:
                validate_dataset(out)
                return out
            except DatasetError as exc:
                print(f"[talker] regenerating synthetic clip: {exc}")
                shutil.rmtree(out)
        tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        self.generate(tmp)
        try:
            os.replace(tmp, out)
        except OSError:  # another process finished the same clip first
            shutil.rmtree(tmp, ignore_errors=True)
        return out

    def generate(self, out: Path) -> None:
        """Write the dataset into ``out`` (see talker.data.layout for the files)."""
        rng = np.random.default_rng(self.seed)
        identity = IDENTITIES[self.identity]
        n, size = self.num_frames, self.resolution
        duration = n / FPS
        audio = load_wav(self.audio, duration) if self.audio else babble(duration, rng)
        mouth_open, mouth_width = mouth_track(audio, n)
        eye_open = _blinks(n, rng)
        rotations, translations = _head_motion(n, rng)
        focal = 0.5 * size / np.tan(np.deg2rad(self.fov_deg) / 2)
        intrinsics = (focal, focal, size / 2, size / 2)
        background = background_image(identity, size, size, rng)

        for sub in ("gt_imgs", "ori_imgs", "torso_imgs", "parsing"):
            (out / sub).mkdir(parents=True, exist_ok=True)
        _save_jpg(out / "bc.jpg", background)
        wavfile.write(out / "aud.wav", SAMPLE_RATE, (np.clip(audio, -1, 1) * 32767).astype(np.int16))

        canonical = np.zeros((n, 68, 3), dtype=np.float32)
        frames = []
        for i in tqdm(range(n), desc=f"synthetic clip {self.name}", unit="frame"):
            state = FaceState(mouth_open=float(mouth_open[i]), mouth_width=float(mouth_width[i]), eye_open=float(eye_open[i]))
            layers = render_frame(identity, state, rotations[i], translations[i], intrinsics, background, self.supersample)
            lm3d = landmarks_3d(identity, state)
            canonical[i] = lm3d
            cam = lm3d @ rotations[i].T + translations[i]
            lms = np.stack([focal * cam[:, 0] / cam[:, 2] + size / 2, focal * cam[:, 1] / cam[:, 2] + size / 2], -1)
            np.savetxt(out / "ori_imgs" / f"{i}.lms", lms - 0.5, fmt="%.4f")  # pixel centres at integers
            _save_jpg(out / "ori_imgs" / f"{i}.jpg", layers.image)
            _save_jpg(out / "gt_imgs" / f"{i}.jpg", layers.image)
            Image.fromarray(to_uint8(layers.torso_rgba), "RGBA").save(out / "torso_imgs" / f"{i}.png")
            palette = np.array([PARSING_COLOURS[k] for k in ("head", "neck", "torso", "background")], dtype=np.uint8)
            Image.fromarray(palette[layers.parsing]).save(out / "parsing" / f"{i}.png")
            c2w = camera_to_world(rotations[i], translations[i])
            frames.append({"img_id": i, "aud_id": i, "transform_matrix": ngp_to_nerf(c2w, SCALE).tolist()})

        num_val = max(1, int(round(n * self.val_fraction)))
        split_at = n - num_val
        np.save(out / LANDMARKS_ALL, canonical)
        np.save(out / "aud_idexp_train.npy", canonical[:split_at])
        np.save(out / "aud_idexp_val.npy", canonical[split_at:])
        common = {"focal_len": focal, "cx": size / 2, "cy": size / 2, "h": size, "w": size}
        for split, part in (("train", frames[:split_at]), ("val", frames[split_at:])):
            (out / f"transforms_{split}.json").write_text(json.dumps({**common, "frames": part}, indent=1))
        np.savez(
            out / "synthetic_truth.npz",
            mouth_open=mouth_open,
            mouth_width=mouth_width,
            eye_open=eye_open,
            head_rotation=rotations,
            head_translation=translations,
        )
        files = sorted(p for p in out.rglob("*") if p.is_file())
        manifest = {
            "generator": "talker.data.synthetic",
            "version": GENERATOR_VERSION,
            "seed": self.seed,
            "params": asdict(self),
            "files": {str(p.relative_to(out)): sha256(p) for p in files},
        }
        (out / MANIFEST).write_text(json.dumps(manifest, indent=1))


def _blinks(n: int, rng: np.random.Generator) -> np.ndarray:
    """Eye openness per frame: blinks of ~0.2 s at irregular 1.5-5 s intervals."""
    openness = np.ones(n)
    t = rng.uniform(0.5, 2.0) * FPS
    while t < n:
        start = int(t)
        profile = np.array([0.6, 0.15, 0.05, 0.3, 0.75])
        stop = min(n, start + len(profile))
        openness[start:stop] = profile[: stop - start]
        t += rng.uniform(1.5, 5.0) * FPS
    return openness


def _head_motion(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Small smooth rotations (degrees: yaw 6, pitch 4, roll 3) and drift, as in frontal speech video."""
    t = np.arange(n) / FPS

    def wander(amplitude: float) -> np.ndarray:
        value = np.zeros(n)
        for _ in range(3):
            freq = rng.uniform(0.05, 0.4)
            value += np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi)) / 3
        return amplitude * value

    angles = np.stack([wander(4.0), wander(6.0), wander(3.0)], axis=-1)  # pitch (x), yaw (y), roll (z)
    rotations = Rotation.from_euler("xyz", angles, degrees=True).as_matrix()
    translations = np.stack([wander(0.04), -0.1 + wander(0.03), 3.0 + wander(0.05)], axis=-1)
    return rotations, translations


def _save_jpg(path: Path, img: np.ndarray) -> None:
    Image.fromarray(to_uint8(img)).save(path, quality=95, subsampling=0)
