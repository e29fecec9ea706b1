"""Scoring externally produced frames (Wav2Lip's video, a driven video, any image folder) with the
evaluator a fit uses (``python -m talker.evaluate frames=...``).

- ``reference`` a dataset folder: its ``split`` frames are the ground truth, matched by id when the
  frames are named by img_id (as renders/ are), else by position; its landmarks, ``aud.wav`` and
  frame timing are used. An image folder or video: ground truth by position, no landmarks.
  No reference: only metrics that need none (Sync) are computed (the cross-driven setting).
- ``audio`` the driving audio, from the first frame on; default: the dataset's ``aud.wav``, else
  the video's own audio track.
- results go to ``out`` (default ``<frames>_eval`` next to the input); ``tags`` are stored in
  metrics.json and become columns in talker.reporting.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from talker.config import ConfigError, compose_config, instantiate
from talker.data.layout import DatasetError, load_split, transforms_path
from talker.evaluation.scoring import dataset_context, score_frames
from talker.metrics import EvalContext, EvalFrame, Evaluator
from talker.utils.media import VIDEO_SUFFIXES, MediaError, list_frames, read_audio, read_image, read_video


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
