"""Synthetic talking-head clip: talker's embedded default dataset, with exact ground truth.

``SyntheticClip(...).ensure(cache_dir)`` returns the dataset folder for its parameters, generating
it on first use (into a temporary folder that is renamed when complete, so an interrupted run never
leaves a half-written dataset behind). The folder name carries a hash of the parameters (and of the
driving audio file's bytes, if one is given), so a changed input never reuses stale data.

Files (see talker.data.layout for the shared layout), per frame ``i``:
    ori_imgs/i.jpg, gt_imgs/i.jpg   the frame (the backdrop is static, so both are the same image)
    ori_imgs/i.lms                  the 68 landmarks projected through the frame's pose and intrinsics
    torso_imgs/i.png                RGBA body layer (neck + torso) around the head, transparent under it
    head_imgs/i.png                 RGBA head layer (talker's addition): gt = head over torso over bc
    parsing/i.png                   head / neck / torso / background in AD-NeRF's colours
and per clip: bc.jpg, aud.wav, aud_mel.npy ([N, 16, 80]), aud_idexp{,_train,_val}.npy, au.csv
(OpenFace-style AU45_r blink intensity, read by ER-NeRF), transforms_{train,val}.json (with
RAD-NeRF's per-frame ``eye_ratio``), manifest.json (generator version, seed, parameters, frame count,
checksums) and synthetic_truth.npz, the exact per-frame values behind the images:
    mouth_open, mouth_width, mouth_round [N]   the expression (see face.FaceState)
    eye_open [N]                               1 open .. 0 closed; eye_ratio [N] as RAD-NeRF computes it
    lips_rect [N, 4]                           rows y0:y1, columns x0:x1 of the rendered lips and mouth
    head_rotation / torso_rotation [N, 3, 3], head_translation / torso_translation [N, 3]
                                               camera-space poses (local p -> R p + T)
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from talker.audio import LogMel, write_wav
from talker.data.cameras import ngp_to_nerf
from talker.data.layout import LANDMARKS_ALL, MANIFEST, DatasetError, eye_area_ratio, sha256, validate_dataset
from talker.data.synthetic.background import background_image
from talker.data.synthetic.face import FaceModel, FaceState
from talker.data.synthetic.identity import IDENTITIES
from talker.data.synthetic.motion import FPS, Framing, blinks, head_motion, poses
from talker.data.synthetic.scene import PARSING_COLOURS, Camera, render_frame
from talker.data.synthetic.speech import describe, driving_audio, visemes
from talker.utils.io import to_uint8

GENERATOR_VERSION = 2
# Raw (NeRF-json) units are head-space units / SCALE, matching RAD-NeRF's default --scale 4.
SCALE = 4.0
TRUTH = "synthetic_truth.npz"


@dataclass(frozen=True)
class SyntheticClip:
    """Parameters of a synthetic clip. Same parameters, same bytes.

    Args:
        num_frames: video length at 25 fps.
        resolution: square frame size in pixels (450 is the reference codebases' usual size).
        seed: drives head motion, blinks, the backdrop's texture and the built-in speech.
        identity: a key of ``talker.data.synthetic.identity.IDENTITIES`` (face, colours, hair, clothes,
            backdrop, voice).
        audio: driving audio: None (built-in speech in the identity's voice), ``babble:<voice>``,
            ``espeak:<voice>:<text>`` or a path to any ffmpeg-readable file (see ``speech``).
        val_fraction: the last ``val_fraction`` of the clip is held out as transforms_val.json.
        fov_deg: vertical field of view of the camera.
        distance: camera to head distance at rest, head units (about 0.22 m each).
        supersample: rays per pixel per axis (anti-aliasing).
        workers: processes rendering frames (0: one per CPU core, at most 4, for clips large enough
            to be worth it). Does not change the output, so it is not part of the clip's name.
    """

    num_frames: int = 250
    resolution: int = 128
    seed: int = 0
    identity: str = "ada"
    audio: str | None = None
    val_fraction: float = 0.1
    fov_deg: float = 25.0
    distance: float = 3.3
    supersample: int = 2
    workers: int = 0

    def __post_init__(self) -> None:
        if self.identity not in IDENTITIES:
            raise ValueError(
                f"data.synthetic.identity={self.identity!r}: unknown identity; choices: {sorted(IDENTITIES)}"
            )
        if self.num_frames < 4:
            raise ValueError(f"data.synthetic.num_frames must be at least 4, got {self.num_frames}")
        if self.resolution < 16:
            raise ValueError(f"data.synthetic.resolution must be at least 16, got {self.resolution}")

    def _audio_file(self) -> Path | None:
        if self.audio is None or self.audio.startswith(("babble:", "espeak:")):
            return None
        return Path(self.audio)

    def params(self) -> dict:
        """The parameters that determine the output."""
        params = asdict(self)
        params.pop("workers")
        return params

    def worker_count(self) -> int:
        if self.workers > 0:
            return self.workers
        large = self.num_frames * self.resolution**2 >= 100 * 128**2
        return min(4, os.cpu_count() or 1) if large else 1

    @property
    def name(self) -> str:
        params = {**self.params(), "version": GENERATOR_VERSION}
        audio_file = self._audio_file()
        if audio_file is not None and audio_file.is_file():
            params["audio_sha256"] = sha256(audio_file)
        digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
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
        try:
            self.generate(tmp)
            os.replace(tmp, out)
        except OSError:
            if not out.is_dir():  # not "another process finished the same clip first"
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return out

    def camera(self) -> Camera:
        focal = 0.5 * self.resolution / np.tan(np.deg2rad(self.fov_deg) / 2)
        return Camera(self.resolution, self.resolution, focal)

    def generate(self, out: Path) -> None:
        """Write the dataset into ``out``."""
        identity = IDENTITIES[self.identity]
        n = self.num_frames
        streams = np.random.SeedSequence(self.seed).spawn(4)  # independent: audio, motion, blinks, backdrop
        rng_audio, rng_motion, rng_blink, rng_backdrop = (np.random.default_rng(s) for s in streams)

        mel = LogMel()
        audio = driving_audio(self.audio, n / FPS, rng_audio, identity.voice)
        mouth = visemes(audio, n, mel)
        eye_open = blinks(n, rng_blink)
        angles, drift = head_motion(n, rng_motion)
        framing = Framing(distance=self.distance)
        heads, torsos = poses(angles, drift, framing)
        camera = self.camera()
        directions = camera.ray_directions(self.supersample)
        background = background_image(identity, self.resolution, self.resolution, rng_backdrop)
        pixels_per_unit = camera.focal / self.distance
        face = FaceModel(identity, texel=min(0.004, 0.25 / pixels_per_unit))

        for sub in ("gt_imgs", "ori_imgs", "torso_imgs", "head_imgs", "parsing"):
            (out / sub).mkdir(parents=True, exist_ok=True)
        _save_jpg(out / "bc.jpg", background)
        write_wav(out / "aud.wav", audio)
        np.save(out / mel.file_name, mel(audio, num_frames=n))

        states = [
            FaceState(
                mouth_open=float(mouth["mouth_open"][i]),
                mouth_width=float(mouth["mouth_width"][i]),
                mouth_round=float(mouth["mouth_round"][i]),
                eye_open=float(eye_open[i]),
            )
            for i in range(n)
        ]
        writer = _FrameWriter(out, face, camera, background, directions, states, heads, torsos)
        workers = self.worker_count()
        progress = dict(total=n, desc=f"synthetic clip {self.name}", unit="frame")
        if workers > 1:  # frames are independent: same bytes whatever the number of workers
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                results = list(tqdm(pool.imap(writer, range(n), chunksize=2), **progress))
        else:
            results = [writer(i) for i in tqdm(range(n), **progress)]
        canonical = np.stack([r["canonical"] for r in results]).astype(np.float32)
        lips_rect = np.stack([r["lips_rect"] for r in results])
        frames = [
            {
                "img_id": i,
                "aud_id": i,
                "transform_matrix": ngp_to_nerf(heads[i].camera_to_world(), SCALE).tolist(),
                "eye_ratio": results[i]["eye_ratio"],
            }
            for i in range(n)
        ]

        num_val = max(1, int(round(n * self.val_fraction)))
        split_at = n - num_val
        np.save(out / LANDMARKS_ALL, canonical)
        np.save(out / "aud_idexp_train.npy", canonical[:split_at])
        np.save(out / "aud_idexp_val.npy", canonical[split_at:])
        common = {
            "focal_len": camera.focal,
            "cx": camera.width / 2,
            "cy": camera.height / 2,
            "h": camera.height,
            "w": camera.width,
        }
        for split, part in (("train", frames[:split_at]), ("val", frames[split_at:])):
            (out / f"transforms_{split}.json").write_text(json.dumps({**common, "frames": part}, indent=1))
        # OpenFace's AU45 (blink) intensity, 0 open .. about 2 closed; ER-NeRF reads ' AU45_r' from au.csv.
        rows = [f"{i}, {i / FPS:.3f}, 0.98, 1, {2.0 * (1.0 - eye_open[i]):.4f}" for i in range(n)]
        (out / "au.csv").write_text(
            "frame, timestamp, confidence, success, AU45_r\n" + "\n".join(rows) + "\n"
        )
        np.savez(
            out / TRUTH,
            eye_open=eye_open,
            eye_ratio=np.array([f["eye_ratio"] for f in frames]),
            lips_rect=lips_rect,
            head_rotation=np.stack([p.rotation for p in heads]),
            head_translation=np.stack([p.translation for p in heads]),
            torso_rotation=np.stack([p.rotation for p in torsos]),
            torso_translation=np.stack([p.translation for p in torsos]),
            **mouth,
        )
        files = sorted(p for p in out.rglob("*") if p.is_file())
        manifest = {
            "generator": "talker.data.synthetic",
            "version": GENERATOR_VERSION,
            "seed": self.seed,
            "params": self.params(),
            "audio_source": describe(self.audio, identity.voice),
            "num_frames": n,
            "fps": FPS,
            "files": {str(p.relative_to(out)): sha256(p) for p in files},
        }
        (out / MANIFEST).write_text(json.dumps(manifest, indent=1))


class _FrameWriter:
    """Renders frame ``i`` and writes its files; a picklable callable for a process pool."""

    def __init__(self, out, face, camera, background, directions, states, heads, torsos) -> None:
        self.out, self.face, self.camera, self.background, self.directions = (
            out,
            face,
            camera,
            background,
            directions,
        )
        self.states, self.heads, self.torsos = states, heads, torsos
        self.palette = np.array(
            [PARSING_COLOURS[k] for k in ("head", "neck", "torso", "background")], dtype=np.uint8
        )

    def __call__(self, i: int) -> dict:
        out, camera, state = self.out, self.camera, self.states[i]
        layers = render_frame(
            self.face.textures(state), self.heads[i], self.torsos[i], camera, self.background, self.directions
        )
        canonical = self.face.landmarks_3d(state)
        lms = camera.project(self.heads[i].apply(canonical)) - 0.5  # pixel centres at integer coordinates
        np.savetxt(out / "ori_imgs" / f"{i}.lms", lms, fmt="%.4f")
        jpg = _jpg_bytes(layers.image)
        (out / "ori_imgs" / f"{i}.jpg").write_bytes(jpg)
        (out / "gt_imgs" / f"{i}.jpg").write_bytes(jpg)
        Image.fromarray(to_uint8(layers.body_rgba), "RGBA").save(out / "torso_imgs" / f"{i}.png")
        Image.fromarray(to_uint8(layers.head_rgba), "RGBA").save(out / "head_imgs" / f"{i}.png")
        Image.fromarray(self.palette[layers.parsing]).save(out / "parsing" / f"{i}.png")
        return {
            "canonical": canonical,
            "lips_rect": np.asarray(_box(layers.mouth_alpha > 0.25)),
            "eye_ratio": eye_area_ratio(
                np.loadtxt(out / "ori_imgs" / f"{i}.lms"), camera.height, camera.width
            ),
        }


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)`` bounding rows / columns (end exclusive) of a mask; zeros if empty."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return 0, 0, 0, 0
    return int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1


def _jpg_bytes(img: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(img)).save(buffer, format="JPEG", quality=95, subsampling=0)
    return buffer.getvalue()


def _save_jpg(path: Path, img: np.ndarray) -> None:
    path.write_bytes(_jpg_bytes(img))
