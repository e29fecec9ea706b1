"""Driving a trained head with new audio: audio -> (motion stage ->) conditions -> frames -> mp4 with audio.

::

    audio file -> per-frame features -> landmarks (motion stage)  --+
                                     -> audio windows              --+-> head -> frames -> mp4 + audio

A head renders one frame per 40 ms of audio, with the dataset's head poses played forwards and
backwards and Gaussian-smoothed, over the dataset's torso-and-background frames; a
landmark-conditioned head is driven through a motion stage (``python -m talker.fit
experiment=motion`` on the same identity). ``python -m talker.drive`` and the cross-driven
evaluation (``talker.evaluation.cross_driven``) both drive heads through this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from PIL import Image, ImageDraw
from tqdm import tqdm

from talker.audio import AudioError, AudioFeatures, HuBERT, LogMel, Wav2Vec2, load_audio
from talker.config import ConfigError, instantiate
from talker.data.cameras import pixel_rays
from talker.data.datamodule import TalkingHeadDataModule
from talker.data.frames import FrameConditions, Track, split_tracks
from talker.data.layout import Split
from talker.head.model import TalkingHead
from talker.inference.fast_render import frame_renderer
from talker.motion.processing import frame_rows, gaussian_smooth
from talker.rendering import RenderOutput
from talker.runs import RunFolder
from talker.utils.io import check_writable, to_uint8

FPS = 25
MOTION_TARGETS = ("talker.modules.motion.MotionModule", "talker.modules.postnet.PostNetModule")


def is_motion_run(folder: RunFolder) -> bool:
    """Whether a run folder holds a motion (or post-net) stage rather than a head."""
    return folder.model_target() in MOTION_TARGETS


class MotionStage:
    """A trained motion (or post-net) stage in a run folder: new audio -> landmarks.

    The folder's config and checkpoint are checked here, before anything loads."""

    def __init__(self, run: str | Path, argument: str | None = None) -> None:
        self.folder = RunFolder(run)
        what = "motion stage"
        self.cfg: DictConfig = self.folder.require_trained(what)
        if not is_motion_run(self.folder):
            where = f"{argument}={run}" if argument else str(run)
            raise ConfigError(f"{where}: not a motion run (its model is {self.folder.model_target()})")

    def features(self) -> AudioFeatures:
        node = OmegaConf.select(self.cfg, "data.features")
        return instantiate(node, "data.features") if node is not None else LogMel()

    def landmarks(
        self, audio: np.ndarray, device: torch.device, temperature: float | None = None, smoothing: float | None = None,
        seed: int = 0,
    ) -> np.ndarray:
        """``[T]`` 16 kHz audio -> ``[N, 68, 3]`` landmarks (N = video frames of the audio)."""
        rows = frame_rows(self.features().frame_windows(audio, fps=FPS))  # the rows alone, no [N, 16, C] windows
        module = self.folder.load_module(self.cfg, device=device, what="motion stage")
        return module.predict_landmarks(rows, temperature=temperature, smoothing_sigma=smoothing, seed=seed).cpu().numpy()


def pingpong(count: int, length: int) -> np.ndarray:
    """Indices ``0, 1, ..., length - 1, length - 2, ..., 0, 1, ...`` (``count`` of them): no jump at the ends."""
    if length == 1:
        return np.zeros(count, dtype=int)
    period = 2 * (length - 1)
    phase = np.arange(count) % period
    return np.where(phase < length, phase, period - phase)


def smooth_poses(poses: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian-smooth ``[N, 4, 4]`` camera-to-world poses: translations averaged, rotations averaged and
    projected back onto rotations (SVD)."""
    if sigma <= 0:
        return poses
    smoothed = gaussian_smooth(poses, sigma)
    u, _, vh = torch.linalg.svd(smoothed[:, :3, :3])
    rotation = u @ vh
    flip = torch.det(rotation) < 0
    u[flip, :, -1] *= -1
    smoothed[:, :3, :3] = u @ vh
    smoothed[:, 3] = poses[:, 3]
    return smoothed


def audio_extractor(features_file: str) -> AudioFeatures:
    """The extractor that made a head's training features (``data.audio_features``), for new audio."""
    for extractor in (LogMel, HuBERT, Wav2Vec2):
        if extractor.file_name == features_file:
            return extractor()
    raise ConfigError(f"data.audio_features={features_file}: no extractor computes it from new audio (drive needs one of "
                      f"{[e.file_name for e in (LogMel, HuBERT, Wav2Vec2)]})")


def head_and_data(run: RunFolder, device: torch.device | str = "cpu") -> tuple[TalkingHead, TalkingHeadDataModule]:
    """A run's trained head (eval mode, on ``device``) and its data module set up for driving."""
    cfg = run.config()
    datamodule = instantiate(cfg.data, "data")
    datamodule.prepare_data()
    datamodule.setup("predict")
    return run.load_module(cfg, device=device).head, datamodule


def render_run(
    run: RunFolder, landmarks: np.ndarray | None, audio: np.ndarray, num_frames: int, device: torch.device,
    pose_smoothing: float, fast: bool = True, compile: bool = False,
) -> Iterator[np.ndarray]:
    """Frames of the head of a run folder driven by ``landmarks`` (and/or the audio's feature windows),
    rendered one at a time as the iterator is read (:func:`driven_frames`)."""
    head, datamodule = head_and_data(run, device)
    return driven_frames(
        head, datamodule.train_split, landmarks, audio, num_frames, pose_smoothing,
        conditions=datamodule.conditions, audio_features=datamodule.audio_features or LogMel.file_name,
        fast=fast, compile=compile,
    )


@torch.no_grad()  # the audio extractor (the generator below has its own)
def driven_frames(
    head: TalkingHead,
    split: Split,
    landmarks: np.ndarray | None,
    audio: np.ndarray,
    num_frames: int,
    pose_smoothing: float = 2.0,
    conditions: FrameConditions | None = None,
    audio_features: str = LogMel.file_name,
    fast: bool = True,
    compile: bool = False,
) -> Iterator[np.ndarray]:
    """``num_frames`` frames of a trained head (on its device) driven by ``landmarks [N, 68, 3]`` and/or
    the feature windows of ``audio``, with the poses of ``split`` played forwards and backwards and
    smoothed, over its torso-and-background frames.

    The driving tracks are made here, for the whole file, and checked before anything renders (per
    second of audio: landmarks 20 kB, poses 1.6 kB, an audio head's 50 Hz feature rows 16 kB for mel
    features, 205 kB for HuBERT's, whose 16-row windows are cut per frame: :class:`FrameWindows`);
    each frame is rendered only when the returned iterator is asked for it, so a consumer that writes
    frames as they come (``drive``) holds one frame at a time whatever the audio's length.

    Per-frame inputs the field declares that the driving signal does not give (RAD-NeRF's and
    ER-NeRF's eye input of an audio-driven head reads the landmarks) come from the frame whose pose is
    played back, as the reference codes take the eye from the dataset at test time."""
    conditions = conditions if conditions is not None else FrameConditions()
    order = torch.from_numpy(pingpong(num_frames, len(split)))
    poses = smooth_poses(split.poses[order], pose_smoothing)
    needs = tuple(head.conditioning.inputs)
    tracks: dict[str, Track] = {}  # the driving signals, one row per driven frame
    if landmarks is not None:
        tracks["landmarks"] = torch.from_numpy(landmarks).float()[:num_frames]
    if "audio" in needs:
        extractor = audio_extractor(audio_features)
        tracks["audio"] = extractor.frame_windows(audio, num_frames=num_frames, fps=FPS)  # rows held, windows cut per frame
    if "pose" in needs:  # a pose-driven strategy (LokiTalk's torso deformation) sees the poses played back
        tracks["pose"] = poses.float()
    available = {**tracks, **conditions.own_tracks()}  # as the builder sees them
    undriven_needs = [key for key in needs if key not in available]
    if undriven_needs:
        raise ConfigError(f"{type(head.conditioning).__name__} reads {undriven_needs}, which nothing drives here")
    render = frame_renderer(head, compile=compile) if fast else head.render_frame
    # Rays are made on the CPU, where the split's poses are, and moved per frame.
    ys, xs = torch.meshgrid(
        torch.arange(split.height, device="cpu"), torch.arange(split.width, device="cpu"), indexing="ij"
    )
    pixels = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=-1)
    return _render_frames(head, split, render, tracks, conditions, order, poses, pixels, num_frames)


@torch.no_grad()
def _render_frames(
    head: TalkingHead, split: Split, render: Callable[[dict], RenderOutput], tracks: dict[str, Track],
    conditions: FrameConditions, order: torch.Tensor, poses: torch.Tensor, pixels: torch.Tensor, num_frames: int,
) -> Iterator[np.ndarray]:
    """The frames of :func:`driven_frames`, one per ``next``: a generator, so that the checks above it
    run when it is called and the rendering only as its frames are read."""
    device = head.device
    played_tracks = split_tracks(split)
    for i in tqdm(range(num_frames), desc="rendering frames", unit="frame"):
        cond = conditions(tracks, i, zero=False)  # the windows of the neighbouring frames, as in training
        undriven = [key for key in head.field.frame_keys if key not in cond and key in played_tracks]
        if undriven:
            cond.update(conditions.of_split(split, int(order[i]), keys=undriven))
        rays_o, rays_d = pixel_rays(poses[i], split.intrinsics, pixels)
        background = split.backgrounds[int(order[i])].view(-1, 3).float() / 255.0
        frame = {
            "rays_o": rays_o.to(device),
            "rays_d": rays_d.to(device),
            "background": background.to(device),
            "cond": {k: v.to(device) for k, v in cond.items()},
        }
        out = render(frame)
        yield to_uint8(out.rgb.view(split.height, split.width, 3))


def draw_landmarks(landmarks: np.ndarray, size: int = 256) -> Iterator[np.ndarray]:
    """Frontal views of ``[N, 68, 3]`` landmarks (x right, y down), one fixed scale for the whole
    sequence, drawn one at a time as they are read."""
    xy = landmarks[..., :2]
    lo, hi = xy.reshape(-1, 2).min(0), xy.reshape(-1, 2).max(0)
    scale = 0.8 * size / max(float((hi - lo).max()), 1e-9)
    centre = (lo + hi) / 2
    return (_draw(points, centre, scale, size) for points in xy)


def _draw(points: np.ndarray, centre: np.ndarray, scale: float, size: int) -> np.ndarray:
    image = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for k, (x, y) in enumerate((points - centre) * scale + size / 2):
        colour = (200, 0, 200) if k >= 48 else (40, 40, 40)
        draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
    return np.asarray(image)


def write_video(path: Path, frames: Iterable[np.ndarray], audio_file: Path, fps: int = FPS) -> None:
    """H.264 video of ``frames`` with ``audio_file`` muxed in as AAC (written to a temporary name first).

    Each frame goes to the encoder as soon as the iterable yields it: given a generator of rendered
    frames, only the frame in hand is held. If the frames fail part-way, the temporary file is
    removed and ``path`` is left as it was."""
    import imageio_ffmpeg

    stream = iter(frames)
    first = next(stream, None)
    if first is None:
        raise ValueError(f"{path}: no frames to write")
    height, width = first.shape[:2]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.mp4")
    writer = imageio_ffmpeg.write_frames(
        str(tmp), (width, height), fps=fps, audio_path=str(audio_file), audio_codec="aac", macro_block_size=2,
        ffmpeg_log_level="error", output_params=["-movflags", "+faststart"],
    )
    writer.send(None)
    try:
        writer.send(np.ascontiguousarray(first))
        del first
        for frame in stream:
            writer.send(np.ascontiguousarray(frame))
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    writer.close()
    tmp.replace(path)


def drive(
    run: str | Path,
    audio: str | Path,
    motion: str | Path | None = None,
    out: str | Path | None = None,
    device: str | None = None,
    temperature: float | None = None,
    smoothing: float | None = None,
    pose_smoothing: float = 2.0,
    seed: int = 0,
    fast: bool = True,
    compile: bool = False,
) -> tuple[Path, Path]:
    """Render ``audio`` with the run's stages; returns the mp4 and the landmark file written. ``fast``:
    frames on the fast path (else the training path); ``compile``: the fast path with its hash-grid
    lookups through ``torch.compile``."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    main = RunFolder(run)
    cfg = main.require_trained("head or motion stage")
    audio = Path(audio)
    try:
        samples = load_audio(audio)
    except AudioError as exc:
        raise ConfigError(str(exc)) from exc
    num_frames = LogMel().num_video_frames(samples.shape[0], FPS)
    out = Path(out) if out else Path(run) / "drive" / audio.stem
    check_writable(out.parent)  # before minutes of rendering
    video_path, landmark_path = out.with_suffix(".mp4"), out.with_name(f"{out.name}_landmarks.npy")
    if is_motion_run(main):
        landmarks = MotionStage(run).landmarks(samples, dev, temperature, smoothing, seed)
        frames = draw_landmarks(landmarks)
    else:
        strategy = str(OmegaConf.select(cfg, "conditioning._target_", default=""))
        landmarks = None
        if "landmarks" in strategy_inputs(cfg):
            if motion is None:
                raise ConfigError(
                    f"{main.path}: its head is conditioned on landmarks ({strategy.rsplit('.', 1)[-1]}) and the run has no motion "
                    f"stage: pass motion=<motion run folder> (train one with python -m talker.fit experiment=motion)"
                )
            landmarks = MotionStage(motion, "motion").landmarks(samples, dev, temperature, smoothing, seed)
        frames = render_run(main, landmarks, samples, num_frames, dev, pose_smoothing, fast=fast, compile=compile)
    write_video(video_path, frames, audio)
    landmark_path.parent.mkdir(parents=True, exist_ok=True)
    if landmarks is not None:
        np.save(landmark_path, landmarks.astype(np.float32))
    return video_path, landmark_path


def strategy_inputs(cfg: DictConfig) -> tuple[str, ...]:
    """The inputs a run's conditioning strategy reads (without building the model)."""
    import importlib

    target = OmegaConf.select(cfg, "conditioning._target_")
    if not target:
        return ()
    module_name, _, name = str(target).rpartition(".")
    return tuple(getattr(getattr(importlib.import_module(module_name), name), "inputs", ()))
