"""The preprocessing steps, each resumable: a rerun skips steps whose outputs are complete.

Every step writes its outputs and then a stamp ``.preprocess/<step>.done.json`` holding a key (a hash of
the step's parameters chained with the previous step's key, so changing an input re-runs everything
after it) and the size of every file it wrote. A step is skipped when its stamp's key matches and
its files are all there with those sizes. ``transforms_*.json`` and ``manifest.json`` are written
last (and removed before anything else re-runs), so a folder whose preprocessing failed or was
interrupted never passes the dataset validator.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from talker.audio import LogMel, write_wav
from talker.data.cameras import ngp_to_nerf
from talker.data.face_landmarker import MESH_TO_68, FaceLandmarker, LandmarkerUnavailable
from talker.data.layout import LANDMARKS_ALL, MANIFEST, SPLITS, eye_area_ratio, sha256, transforms_path, validate_dataset
from talker.preprocess import segment
from talker.preprocess.tracking import RIGID, fill_missing, focal_from_fov, intrinsics_matrix, project, track
from talker.preprocess.video import FPS, PreprocessError, decode_audio, decode_frames, output_size, probe
from talker.utils.io import write_json
from talker.weights import FACE_LANDMARKER

VERSION = 1
STATE = ".preprocess"
REPORT = "preprocess_report.json"


@dataclass
class Options:
    """What ``python -m talker.preprocess`` takes (``key=value`` on the command line).

    Args:
        video: input video (anything ffmpeg reads), with an audio track.
        out: dataset folder to write (created; a rerun resumes it).
        landmarker: MediaPipe's face_landmarker.task bundle.
        size: shorter side of the frames in pixels (0: the video's own; 450 is the reference codebases' size).
        seconds: use only the first ``seconds`` of the video (0: all).
        val_fraction: the last part of the clip held out as transforms_val.json.
        smooth: Gaussian filter of the head poses over time, in frames (0: none).
        fov: vertical field of view in degrees that sets the focal length (see talker.preprocess.tracking).
        focal: focal length in pixels (0: from ``fov``).
        min_detected: fewest share of frames with a face (else an error).
        audio_tolerance: seconds the audio may end before the video (padded with silence).
        bg_margin: pixels around the person never taken into the clean background.
    """

    video: Path
    out: Path
    landmarker: Path = field(default_factory=FACE_LANDMARKER.path)
    size: int = 450
    seconds: float = 0.0
    val_fraction: float = 0.1
    smooth: float = 1.5
    fov: float = 20.0
    focal: float = 0.0
    min_detected: float = 0.5
    audio_tolerance: float = 0.1
    bg_margin: int = 4


@dataclass
class Context:
    options: Options
    out: Path
    state: Path
    info: dict = field(default_factory=dict)  # num_frames, width, height (from the decode stamp)

    def frame_ids(self) -> range:
        return range(self.info["num_frames"])

    def read_frames(self) -> np.ndarray:
        return np.stack([np.asarray(Image.open(self.out / "ori_imgs" / f"{i}.jpg").convert("RGB")) for i in self.frame_ids()])

    def progress(self, iterable, desc: str, total: int | None = None):
        return tqdm(iterable, desc=desc, total=total, unit="frame", leave=False)


@dataclass
class Step:
    name: str
    params: Callable[[Options], dict]
    run: Callable[[Context], list[Path]]  # returns the files it wrote


def _save_jpg(path: Path, image: np.ndarray) -> None:
    Image.fromarray(image).save(path, quality=95, subsampling=0)


def _fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


# ---------------------------------------------------------------- steps


def step_decode(ctx: Context) -> list[Path]:
    opts = ctx.options
    width, height, _ = probe(opts.video)
    out_w, out_h = output_size(width, height, opts.size)
    folder = _fresh_dir(ctx.out / "ori_imgs")
    written = []
    for i, frame in enumerate(ctx.progress(decode_frames(opts.video, out_w, out_h, opts.seconds or None), "decode")):
        path = folder / f"{i}.jpg"
        _save_jpg(path, frame)
        written.append(path)
    audio = decode_audio(opts.video, len(written), opts.audio_tolerance)
    write_wav(ctx.out / "aud.wav", audio)
    ctx.info.update(num_frames=len(written), width=out_w, height=out_h)
    write_json(ctx.state / "video.json", {**ctx.info, "source_size": [width, height], "fps": FPS})
    return [*written, ctx.out / "aud.wav", ctx.state / "video.json"]


def step_landmarks(ctx: Context) -> list[Path]:
    opts = ctx.options
    try:
        landmarker = FaceLandmarker(opts.landmarker, video=True, blendshapes=True)
    except LandmarkerUnavailable as exc:
        raise PreprocessError(f"landmarker={opts.landmarker}: {exc}") from exc
    n = ctx.info["num_frames"]
    meshes = np.zeros((n, 478, 3), np.float32)
    blink = np.zeros(n, np.float32)
    found = np.zeros(n, bool)
    try:
        for i in ctx.progress(ctx.frame_ids(), "face landmarks"):
            image = np.asarray(Image.open(ctx.out / "ori_imgs" / f"{i}.jpg").convert("RGB"))
            mesh = landmarker.detect(image, timestamp_ms=i * 1000 // FPS)
            if mesh is not None:
                meshes[i], found[i] = mesh.points, True
                blink[i] = 0.5 * (mesh.blendshapes.get("eyeBlinkLeft", 0.0) + mesh.blendshapes.get("eyeBlinkRight", 0.0))
    finally:
        landmarker.close()
    if found.mean() < opts.min_detected:
        raise PreprocessError(
            f"video={opts.video}: a face was found in {found.sum()} of {n} frames (min_detected={opts.min_detected})"
        )
    meshes, filled = fill_missing(meshes, found)
    blink, _ = fill_missing(blink, found)
    for i in range(n):
        np.savetxt(ctx.out / "ori_imgs" / f"{i}.lms", meshes[i, MESH_TO_68, :2] - 0.5, fmt="%.4f")
    np.savez(ctx.state / "mesh.npz", meshes=meshes, found=found, blink=blink)
    write_json(ctx.state / "no_face.json", {"frames": n, "detected": int(found.sum()), "filled": filled})
    return [ctx.out / "ori_imgs" / f"{i}.lms" for i in range(n)] + [ctx.state / "mesh.npz", ctx.state / "no_face.json"]


def _load_mesh(ctx: Context) -> dict:
    return dict(np.load(ctx.state / "mesh.npz"))


def step_tracking(ctx: Context) -> list[Path]:
    opts = ctx.options
    meshes = _load_mesh(ctx)["meshes"]
    w, h = ctx.info["width"], ctx.info["height"]
    with tqdm(total=1, desc="head pose", leave=False) as bar:
        result = track(meshes, w, h, opts.smooth, opts.focal or focal_from_fov(opts.fov, h))
        bar.update()
    k = intrinsics_matrix(result.focal, w, h)
    rigid_err = np.linalg.norm(project(result.canonical[RIGID], result.rotations, result.translations, k) - meshes[:, RIGID, :2], axis=-1)
    canon_err = np.linalg.norm(project(result.canonical[MESH_TO_68], result.rotations, result.translations, k) - meshes[:, MESH_TO_68, :2], axis=-1)
    expr_err = np.linalg.norm(project(result.expressions68, result.rotations, result.translations, k) - meshes[:, MESH_TO_68, :2], axis=-1)
    np.savez(
        ctx.state / "tracking.npz",
        canonical=result.canonical,
        expressions68=result.expressions68,
        rotations=result.rotations,
        translations=result.translations,
        focal=result.focal,
    )
    stats = {
        "focal": result.focal,
        "fov_deg": float(np.rad2deg(2 * np.arctan(0.5 * h / result.focal))),
        "reprojection_px": {
            "rigid_mean": float(rigid_err.mean()),
            "rigid_max": float(rigid_err.max()),
            "canonical68_mean": float(canon_err.mean()),
            "canonical68_max": float(canon_err.max()),
            "landmarks68_mean": float(expr_err.mean()),
            "landmarks68_max": float(expr_err.max()),
        },
        "reprojection_px_by_focal": {str(f): e for f, e in result.focal_errors.items()},
    }
    write_json(ctx.state / "tracking.json", stats)
    return [ctx.state / "tracking.npz", ctx.state / "tracking.json"]


def step_segmentation(ctx: Context) -> list[Path]:
    meshes = _load_mesh(ctx)["meshes"]
    frames = ctx.read_frames()
    masks = np.stack(
        [segment.person_mask(frames[i], meshes[i], meshes[i, MESH_TO_68, :2]) for i in ctx.progress(ctx.frame_ids(), "segmentation")]
    )
    masks = segment.temporal_vote(masks)
    folder = _fresh_dir(ctx.out / "parsing")
    written = []
    for i in ctx.progress(ctx.frame_ids(), "parsing"):
        labels = segment.parse(frames[i], masks[i], meshes[i], meshes[i, MESH_TO_68, :2])
        written.append(folder / f"{i}.png")
        Image.fromarray(segment.PALETTE[labels]).save(written[-1])
    return written


def _labels(ctx: Context, i: int) -> np.ndarray:
    rgb = np.asarray(Image.open(ctx.out / "parsing" / f"{i}.png").convert("RGB"))
    return np.abs(rgb[:, :, None, :].astype(int) - segment.PALETTE[None, None].astype(int)).sum(-1).argmin(-1)


def step_background(ctx: Context) -> list[Path]:
    frames = ctx.read_frames()
    person = np.stack([_labels(ctx, i) != segment.BACKGROUND for i in ctx.progress(ctx.frame_ids(), "background")])
    background, never = segment.clean_background(frames, person, ctx.options.bg_margin)
    _save_jpg(ctx.out / "bc.jpg", background)
    write_json(ctx.state / "background.json", {"never_uncovered_fraction": never})
    return [ctx.out / "bc.jpg", ctx.state / "background.json"]


def step_composite(ctx: Context) -> list[Path]:
    bc = np.asarray(Image.open(ctx.out / "bc.jpg").convert("RGB")).astype(np.float32)
    gt_dir, torso_dir = _fresh_dir(ctx.out / "gt_imgs"), _fresh_dir(ctx.out / "torso_imgs")
    written = []
    for i in ctx.progress(ctx.frame_ids(), "gt / torso images"):
        frame = np.asarray(Image.open(ctx.out / "ori_imgs" / f"{i}.jpg").convert("RGB")).astype(np.float32)
        labels = _labels(ctx, i)
        alpha = segment.feather(labels != segment.BACKGROUND)[..., None]
        _save_jpg(gt_dir / f"{i}.jpg", np.round(frame * alpha + bc * (1 - alpha)).astype(np.uint8))
        body = segment.feather((labels == segment.NECK) | (labels == segment.TORSO))
        rgba = np.concatenate([frame * (body[..., None] > 0), 255.0 * body[..., None]], -1)
        Image.fromarray(np.round(rgba).astype(np.uint8), "RGBA").save(torso_dir / f"{i}.png")
        written += [gt_dir / f"{i}.jpg", torso_dir / f"{i}.png"]
    return written


def step_audio(ctx: Context) -> list[Path]:
    from talker.audio import load_audio

    mel = LogMel()
    with tqdm(total=1, desc="audio features", leave=False) as bar:
        windows = mel(load_audio(ctx.out / "aud.wav"), num_frames=ctx.info["num_frames"])
        bar.update()
    np.save(ctx.out / mel.file_name, windows)
    return [ctx.out / mel.file_name]


def _box(points: np.ndarray, h: int, w: int, pad: float) -> list[int]:
    """``[y0, y1, x0, x1]`` around ``[K, 2]`` (x, y) points, grown by ``pad`` of its size per side, clipped."""
    lo, hi = points.min(0), points.max(0)
    grow = (hi - lo) * pad
    x0, y0 = np.floor(lo - grow).astype(int)
    x1, y1 = np.ceil(hi + grow).astype(int) + 1
    return [max(0, int(y0)), min(h, int(y1)), max(0, int(x0)), min(w, int(x1))]


def step_finalize(ctx: Context) -> list[Path]:
    opts, out = ctx.options, ctx.out
    n, w, h = ctx.info["num_frames"], ctx.info["width"], ctx.info["height"]
    tracking = dict(np.load(ctx.state / "tracking.npz"))
    mesh = _load_mesh(ctx)
    expressions = tracking["expressions68"].astype(np.float32)
    num_val = max(1, int(round(n * opts.val_fraction)))
    split_at = n - num_val
    if split_at < 1:
        raise PreprocessError(f"video={opts.video}: {n} frames are too few to hold out val_fraction={opts.val_fraction}")
    np.save(out / LANDMARKS_ALL, expressions)
    np.save(out / "aud_idexp_train.npy", expressions[:split_at])
    np.save(out / "aud_idexp_val.npy", expressions[split_at:])
    lms = [np.loadtxt(out / "ori_imgs" / f"{i}.lms") for i in range(n)]
    np.savez(
        out / "boxes.npz",
        face_rect=np.array([_box(l, h, w, 0.1) for l in lms]),
        lips_rect=np.array([_box(l[48:68], h, w, 0.15) for l in lms]),
    )
    rows = [f"{i}, {i / FPS:.3f}, {float(mesh['found'][i]):.2f}, {int(mesh['found'][i])}, {2.0 * mesh['blink'][i]:.4f}" for i in range(n)]
    (out / "au.csv").write_text("frame, timestamp, confidence, success, AU45_r\n" + "\n".join(rows) + "\n")
    frames = []
    for i in range(n):
        c2w = np.eye(4)
        c2w[:3, :3] = tracking["rotations"][i].T
        c2w[:3, 3] = -tracking["rotations"][i].T @ tracking["translations"][i]
        frames.append(
            {
                "img_id": i,
                "aud_id": i,
                "transform_matrix": ngp_to_nerf(c2w, 4.0).tolist(),
                "eye_ratio": eye_area_ratio(lms[i], h, w),
            }
        )
    common = {"focal_len": float(tracking["focal"]), "cx": w / 2, "cy": h / 2, "h": h, "w": w}
    write_preview(ctx, out / "preview.png")
    report = {
        "video": str(opts.video),
        "frames": n,
        "no_face": json.loads((ctx.state / "no_face.json").read_text()),
        "tracking": json.loads((ctx.state / "tracking.json").read_text()),
        "background": json.loads((ctx.state / "background.json").read_text()),
        "segmentation": "GrabCut from a face-mesh trimap + 3-frame vote; neck by skin chroma under the jaw (talker.preprocess.segment)",
    }
    write_json(out / REPORT, report)
    # transforms go in last, behind the manifest: until they exist the folder does not validate
    pending = {}
    for split, part in (("train", frames[:split_at]), ("val", frames[split_at:])):
        tmp = out / f".transforms_{split}.json.tmp"
        tmp.write_text(json.dumps({**common, "frames": part}, indent=1))
        pending[tmp] = transforms_path(out, split)
    files = sorted(p for p in out.rglob("*") if p.is_file() and STATE not in p.relative_to(out).parts and p not in pending)
    checksums = {str(p.relative_to(out)): sha256(p) for p in files}
    checksums.update({dst.name: sha256(tmp) for tmp, dst in pending.items()})
    manifest = {
        "generator": "talker.preprocess",
        "version": VERSION,
        "video": str(opts.video),
        "video_sha256": sha256(opts.video),
        "params": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(opts).items() if k not in ("video", "out")},
        "num_frames": n,
        "fps": FPS,
        "files": checksums,
    }
    write_json(out / MANIFEST, manifest)
    for tmp, dst in pending.items():
        os.replace(tmp, dst)
    return [*pending.values(), out / MANIFEST]


def write_preview(ctx: Context, path: Path, count: int = 4) -> None:
    """Rows of frames: raw frame with the 68 landmarks | parsing over the frame | torso RGBA | gt image."""
    n, w, h = ctx.info["num_frames"], ctx.info["width"], ctx.info["height"]
    ids = np.linspace(0, n - 1, min(count, n)).round().astype(int)
    sheet = Image.new("RGB", (4 * w, len(ids) * h), "white")
    checker = ((np.indices((h, w)) // 8).sum(0) % 2 * 60 + 150).astype(np.uint8)
    for row, i in enumerate(ids):
        ori = Image.open(ctx.out / "ori_imgs" / f"{i}.jpg").convert("RGB")
        draw = ImageDraw.Draw(ori)
        r = max(1, w // 200)
        for x, y in np.loadtxt(ctx.out / "ori_imgs" / f"{i}.lms") + 0.5:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=(0, 255, 0))
        parsing = Image.blend(Image.open(ctx.out / "ori_imgs" / f"{i}.jpg").convert("RGB"), Image.open(ctx.out / "parsing" / f"{i}.png").convert("RGB"), 0.5)
        torso = Image.open(ctx.out / "torso_imgs" / f"{i}.png")
        back = Image.fromarray(np.stack([checker] * 3, -1))
        back.paste(torso, (0, 0), torso)
        for col, image in enumerate((ori, parsing, back, Image.open(ctx.out / "gt_imgs" / f"{i}.jpg"))):
            sheet.paste(image, (col * w, row * h))
    sheet.save(path)


STEPS = [
    Step("decode", lambda o: {"video_sha256": sha256(o.video), "size": o.size, "seconds": o.seconds, "audio_tolerance": o.audio_tolerance}, step_decode),
    Step("landmarks", lambda o: {"landmarker": str(Path(o.landmarker).name), "min_detected": o.min_detected}, step_landmarks),
    Step("tracking", lambda o: {"smooth": o.smooth, "focal": o.focal, "fov": o.fov}, step_tracking),
    Step("segmentation", lambda o: {}, step_segmentation),
    Step("background", lambda o: {"bg_margin": o.bg_margin}, step_background),
    Step("composite", lambda o: {}, step_composite),
    Step("audio", lambda o: {}, step_audio),
    Step("finalize", lambda o: {"val_fraction": o.val_fraction}, step_finalize),
]


def _stamp_key(step: Step, options: Options, previous: str) -> str:
    payload = json.dumps({"step": step.name, "version": VERSION, "params": step.params(options), "previous": previous}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _is_done(ctx: Context, step: Step, key: str) -> bool:
    stamp = ctx.state / f"{step.name}.done.json"
    if not stamp.is_file():
        return False
    try:
        record = json.loads(stamp.read_text())
    except json.JSONDecodeError:
        return False
    if record.get("key") != key:
        return False
    for rel, size in record.get("files", {}).items():
        path = ctx.out / rel
        if not path.is_file() or path.stat().st_size != size:
            return False
    ctx.info.update(record.get("info", {}))
    return True


def preprocess(options: Options) -> dict:
    """Run (or resume) every step; returns ``{step: "done" | "skipped" | seconds}`` and validates the result."""
    options.video, options.out = Path(options.video), Path(options.out)
    out = options.out
    if not options.video.is_file():
        raise PreprocessError(f"video={options.video}: file does not exist")
    if out.exists() and any(out.iterdir()) and not (out / STATE).is_dir():
        raise PreprocessError(f"out={out}: exists and is not a talker.preprocess output (choose a new or empty folder)")
    created = not out.exists()
    ctx = Context(options, out, out / STATE)
    ctx.state.mkdir(parents=True, exist_ok=True)
    previous, status, invalidated = "", {}, False
    try:
        for number, step in enumerate(STEPS, 1):
            key = _stamp_key(step, options, previous)
            previous = key
            if not invalidated and _is_done(ctx, step, key):
                status[step.name] = "skipped"
                continue
            if not invalidated:  # from here on everything re-runs; the old result must stop validating
                invalidated = True
                for stale in [MANIFEST, *(transforms_path(out, s).name for s in SPLITS)]:
                    (out / stale).unlink(missing_ok=True)
                for later in STEPS[number - 1 :]:
                    (ctx.state / f"{later.name}.done.json").unlink(missing_ok=True)
            start = time.perf_counter()
            print(f"[talker.preprocess] {number}/{len(STEPS)} {step.name}", flush=True)
            written = step.run(ctx)
            record = {"key": key, "info": ctx.info, "files": {str(p.relative_to(out)): p.stat().st_size for p in written}}
            write_json(ctx.state / f"{step.name}.done.json", record)
            status[step.name] = round(time.perf_counter() - start, 2)
    except BaseException:
        if created and not any((ctx.state / f"{s.name}.done.json").is_file() for s in STEPS):
            shutil.rmtree(out, ignore_errors=True)  # nothing finished: leave nothing behind
        raise
    validate_dataset(out)
    return status
