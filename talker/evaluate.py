"""Score a finished run, or any rendered frames, with the evaluator the training callback uses.

Two modes::

    python -m talker.evaluate run=<run folder> [checkpoint=<file>] [device=cpu|cuda] [speed=true] [resolution=450]
    python -m talker.evaluate frames=<image folder | video> [reference=<dataset | image folder | video>]
                              [split=val] [audio=<wav | video>] [out=<folder>] [tag.<key>=<value> ...]

``run=`` rebuilds the model from the run's resolved ``config.yaml``, loads its checkpoint, renders
the held-out frames and rewrites ``metrics.json`` (and frames.csv, renders/, mouth_strip.png);
rendering and scoring are deterministic, so two calls give the same numbers. ``speed=true`` also
rewrites ``speed.json`` (at ``resolution`` rows if given).

``frames=`` scores externally produced frames (e.g. Wav2Lip's video) with the same metrics:

- ``reference`` a dataset folder: its ``split`` frames are the ground truth, matched by id when the
  frames are named by img_id (as renders/ are), else by position; its landmarks, ``aud.wav`` and
  frame timing are used. An image folder or video: ground truth by position, no landmarks.
  No reference: only metrics that need none (Sync) are computed (the cross-driven setting).
- ``audio`` the driving audio, from the first frame on; default: the dataset's ``aud.wav``, else
  the video's own audio track.
- results go to ``out`` (default ``<frames>_eval`` next to the input); ``tag.<key>=<value>`` pairs
  are stored in metrics.json (``tags``) and become columns in talker.reporting
  (e.g. ``tag.method=wav2lip tag.setting=cross_lingual``).

Any other ``key=value`` with a dot is a config override of the evaluator, e.g.
``callbacks.evaluation.evaluator.metrics.lpips.weights=/path/alexnet-owt-7be5be79.pth`` or
``callbacks.evaluation.evaluator.metrics.fid=null``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from talker.callbacks.evaluation import dataset_context, evaluate_module, score_frames, write_speed_profile
from talker.config import ConfigError, compose_config, instantiate
from talker.data.layout import DatasetError, load_split, transforms_path
from talker.runs import RunFolder
from talker.metrics import EvalContext, EvalFrame, Evaluator, SpeedProfile
from talker.utils.media import VIDEO_SUFFIXES, MediaError, list_frames, read_audio, read_image, read_video

USAGE = (
    "usage: python -m talker.evaluate run=<run folder> [checkpoint=<file>] [device=cpu|cuda] [speed=true] [resolution=<rows>]\n"
    "   or: python -m talker.evaluate frames=<folder|video> [reference=<dataset|folder|video>] [split=val] "
    "[audio=<wav|video>] [out=<folder>] [tag.<key>=<value> ...]"
)
RUN_KEYS = {"run", "checkpoint", "device", "speed", "resolution"}
FRAMES_KEYS = {"frames", "reference", "split", "audio", "out"}


def _apply_overrides(cfg: DictConfig, overrides: Sequence[str]) -> DictConfig:
    if overrides:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    return cfg


def evaluate_run(
    run: str | Path,
    checkpoint: str | Path | None = None,
    device: str | None = None,
    speed: bool = False,
    resolution: int | None = None,
    overrides: Sequence[str] = (),
) -> dict:
    """Re-score the run folder ``run``; returns the summary metrics."""
    folder = RunFolder(run)
    run = folder.path
    cfg = _apply_overrides(folder.config(), overrides)
    cfg.run_dir = str(run)
    ckpt = Path(checkpoint) if checkpoint else folder.checkpoint_file
    state = folder.checkpoint(ckpt)
    datamodule = instantiate(cfg.data, "data")
    module = folder.load_module(cfg, state, device or ("cuda" if torch.cuda.is_available() else "cpu"))
    datamodule.prepare_data()
    datamodule.setup("validate")
    evaluator = instantiate(cfg.callbacks.evaluation.evaluator, "callbacks.evaluation.evaluator")
    provenance = {
        "split": "val",
        "dataset": str(datamodule.dataset_dir()),
        "global_step": state.get("global_step"),
        "checkpoint": str(ckpt),
    }
    frames = datamodule.eval_frames()
    try:
        context = dataset_context(datamodule.dataset_dir())
    except MediaError as exc:
        raise ConfigError(str(exc)) from exc
    result, _ = evaluate_module(module, frames, evaluator, run, provenance, context=context)
    if speed:
        configured = OmegaConf.select(cfg, "callbacks.evaluation.speed")
        profile = instantiate(configured, "callbacks.evaluation.speed") if configured is not None else SpeedProfile()
        if resolution is not None:
            profile.resolution = int(resolution)
        timing = write_speed_profile(module, frames, profile, run)
        print(f"[talker] {folder.speed_file}: {timing['resolution']}, {timing['total_ms']:.2f} ms, {timing['fps']:.2f} FPS")
    return result.summary


def _load_images(source: Path) -> tuple[list[tuple[int, np.ndarray]], float | None]:
    """``(frame id, uint8 image)`` pairs and the frame rate (None for an image folder)."""
    if source.is_dir():
        return [(i, read_image(p)) for i, p in list_frames(source)], None
    if source.suffix.lower() in VIDEO_SUFFIXES and source.is_file():
        frames, fps = read_video(source)
        return list(enumerate(frames)), fps
    raise ConfigError(f"{source}: not an image folder or a video ({', '.join(VIDEO_SUFFIXES)})")


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(image, copy=True)).float() / 255.0  # decoded frames may be read-only


def evaluate_frames(
    frames: str | Path,
    reference: str | Path | None = None,
    split: str = "val",
    audio: str | Path | None = None,
    out: str | Path | None = None,
    tags: dict[str, str] | None = None,
    overrides: Sequence[str] = (),
    not_applicable: Mapping[str, str] | None = None,
) -> tuple[dict, Path]:
    """Score externally rendered frames; returns the summary metrics and the folder written.

    ``not_applicable`` maps metric names that do not measure this method to the reason: they are
    switched off and metrics.json lists them (the tables show N/A).
    """
    frames = Path(frames)
    if not frames.exists():
        raise ConfigError(f"frames={frames}: no such folder or video")
    out = Path(out) if out else frames.with_name(f"{frames.stem if frames.is_file() else frames.name}_eval")
    try:
        preds, fps = _load_images(frames)
        context = EvalContext(fps=fps or 25.0, has_reference=reference is not None)
        targets: list[np.ndarray | None] = [None] * len(preds)
        landmarks: list[torch.Tensor | None] = [None] * len(preds)
        times = list(range(len(preds)))
        matched = "position"
        if reference is not None:
            reference = Path(reference)
            if reference.is_dir() and transforms_path(reference, split).is_file():
                context = dataset_context(reference)
                truth = load_split(reference, split)
                ids = [int(i) for i in truth.img_ids]
                by_id = {img_id: k for k, img_id in enumerate(ids)}
                if frames.is_dir() and all(i in by_id for i, _ in preds):
                    order, matched = [by_id[i] for i, _ in preds], "img_id"
                else:
                    order = list(range(min(len(preds), len(ids))))
                    preds = preds[: len(order)]
                targets = [truth.images[k].numpy() for k in order]
                landmarks = [truth.lms[k] for k in order]
                times = [int(truth.aud_ids[k]) for k in order]
            else:
                ref_frames, _ = _load_images(reference)
                if frames.is_dir() and reference.is_dir() and {i for i, _ in preds} <= {i for i, _ in ref_frames}:
                    lookup = dict(ref_frames)
                    targets, matched = [lookup[i] for i, _ in preds], "frame id"
                else:
                    n = min(len(preds), len(ref_frames))
                    preds, targets = preds[:n], [image for _, image in ref_frames[:n]]
                landmarks = [None] * len(preds)
                times = list(range(len(preds)))
        if audio is not None:
            context.audio, context.sample_rate, times = read_audio(audio), 16000, list(range(len(preds)))
        elif context.audio is None and frames.is_file():
            try:
                context.audio, context.sample_rate = read_audio(frames), 16000
            except MediaError:
                pass  # a silent video: Sync reports itself unavailable
    except (MediaError, DatasetError) as exc:
        raise ConfigError(str(exc)) from exc
    for (frame_id, pred), target in zip(preds, targets):
        if target is not None and pred.shape != target.shape:
            raise ConfigError(f"frames={frames}: frame {frame_id} is {pred.shape[1]}x{pred.shape[0]}, its reference {target.shape[1]}x{target.shape[0]}")

    def stream() -> Iterator[EvalFrame]:
        for ((frame_id, pred), target, lms, t) in zip(preds, targets, landmarks, times):
            yield EvalFrame(frame_id, _tensor(pred), None if target is None else _tensor(target), lms, t)

    not_applicable = dict(not_applicable or {})
    switched_off = [f"callbacks.evaluation.evaluator.metrics.{name}=null" for name in not_applicable]
    cfg = compose_config([*overrides, *switched_off])
    evaluator: Evaluator = instantiate(cfg.callbacks.evaluation.evaluator, "callbacks.evaluation.evaluator")
    provenance = {
        "source": str(frames.resolve()),
        "reference": str(Path(reference).resolve()) if reference is not None else None,
        "split": split if reference is not None else None,
        "audio": str(Path(audio).resolve()) if audio is not None else None,
        "matched_by": matched if reference is not None else None,
        "tags": dict(tags or {}),
        **({"not_applicable": not_applicable} if not_applicable else {}),
    }
    result, _ = score_frames(stream(), evaluator, context, out, provenance, save_renders=False)
    return result.summary, out


def parse_arguments(
    argv: Sequence[str], keys: set[str], tags: bool = True
) -> tuple[dict[str, str], dict[str, str], list[str], list[str]]:
    """``key=value`` words -> (arguments in ``keys``, ``tag.<k>`` values, dotted config overrides, the rest)."""
    args: dict[str, str] = {}
    tag_values: dict[str, str] = {}
    overrides: list[str] = []
    bad: list[str] = []
    for item in argv:
        if "=" not in item:
            bad.append(item)
            continue
        key, value = item.split("=", 1)
        if tags and key.startswith("tag."):
            tag_values[key[4:]] = value
        elif key in keys:
            args[key] = value
        elif "." in key:
            overrides.append(item)
        else:
            bad.append(item)
    return args, tag_values, overrides, bad


def main(argv: list[str] | None = None) -> None:
    args, tags, overrides, bad = parse_arguments(sys.argv[1:] if argv is None else argv, RUN_KEYS | FRAMES_KEYS)
    mode = "run" if "run" in args else "frames" if "frames" in args else None
    allowed = RUN_KEYS if mode == "run" else FRAMES_KEYS
    unknown = sorted(set(args) - allowed) + bad + (sorted(f"tag.{k}" for k in tags) if mode == "run" else [])
    if mode is None or unknown:
        print(f"talker.evaluate: error: {USAGE}" + (f"\n(not understood: {', '.join(unknown)})" if unknown else ""), file=sys.stderr)
        sys.exit(2)
    try:
        if mode == "run":
            resolution = int(args["resolution"]) if "resolution" in args else None
            speed = args.get("speed", "false").lower() in ("1", "true", "yes")
            summary = evaluate_run(args["run"], args.get("checkpoint"), args.get("device"), speed, resolution, overrides)
            where = Path(args["run"])
        else:
            summary, where = evaluate_frames(
                args["frames"], args.get("reference"), args.get("split", "val"), args.get("audio"), args.get("out"), tags, overrides
            )
    except ConfigError as exc:
        print(f"talker.evaluate: error: {exc}", file=sys.stderr)
        sys.exit(2)
    print("[talker] " + ", ".join(f"{k}={v:.4f}" for k, v in summary.items()))
    print(f"[talker] wrote {RunFolder(where).metrics_file}")


if __name__ == "__main__":
    main()
