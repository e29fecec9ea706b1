"""Scoring a stream of frames with the one evaluator and writing the result files into a folder.

Written into the folder (a run folder, or the output folder of an external evaluation):
    metrics.json      summary metrics, what was unavailable and why, provenance
    frames.csv        per-frame values
    renders/<id>.png  every frame scored (8-bit, exactly what was scored)
    mouth_strip.png   mouth crops, ground truth (top) over the frame (bottom)

Held-out frames of a trained head (``talker.evaluation.heldout``), external frames
(``talker.evaluation.external``) and cross-driven videos (``talker.evaluation.cross_driven``) all
end here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from talker.data.landmarks import MOUTH, landmark_box, mouth_opening
from talker.data.layout import MANIFEST
from talker.metrics import EvalContext, EvalFrame, EvalResult, Evaluator
from talker.runs import RunFolder
from talker.utils.io import save_png, to_uint8, write_csv
from talker.utils.media import read_audio

DATASET_AUDIO = "aud.wav"
DATASET_FPS = 25.0  # the layout's frame rate (AD-NeRF, RAD-NeRF, ER-NeRF, R2-Talker)


def mouth_tiles(frame: EvalFrame, size: int = 64) -> np.ndarray:
    """Ground-truth mouth crop above the rendered one, ``[2 * size, size, 3]`` uint8."""
    h, w = frame.target.shape[:2]
    y0, y1, x0, x1 = landmark_box(frame.landmarks[MOUTH], h, w, pad=0.35)
    tiles = [
        np.asarray(Image.fromarray(to_uint8(image[y0:y1, x0:x1])).resize((size, size), Image.NEAREST))
        for image in (frame.target, frame.pred)
    ]
    return np.concatenate(tiles, axis=0)


def mouth_strip(columns: Sequence[tuple[float, np.ndarray]], count: int = 8) -> np.ndarray:
    """Columns from :func:`mouth_tiles`, picked to span the range of mouth openings (closed -> open)."""
    order = sorted(columns, key=lambda c: c[0])
    idx = np.linspace(0, len(order) - 1, min(count, len(order))).round().astype(int)
    return np.concatenate([order[i][1] for i in idx], axis=1)


def dataset_context(root: str | Path) -> EvalContext:
    """What the evaluator should know about a dataset: its audio track and whether its landmarks are exact."""
    root = Path(root)
    audio = read_audio(root / DATASET_AUDIO) if (root / DATASET_AUDIO).is_file() else None
    exact = False
    if (root / MANIFEST).is_file():
        exact = str(json.loads((root / MANIFEST).read_text()).get("generator", "")).startswith("talker.data.synthetic")
    return EvalContext(audio=audio, sample_rate=16000, fps=DATASET_FPS, has_reference=True, landmarks_exact=exact)


def score_frames(
    frames: Iterable[EvalFrame],
    evaluator: Evaluator,
    context: EvalContext,
    out_dir: str | Path,
    provenance: dict[str, Any],
    save_renders: bool = True,
    strip_frames: int = 8,
) -> tuple[EvalResult, np.ndarray | None]:
    """Score a stream of frames and write metrics.json, frames.csv (and renders/, mouth_strip.png) into ``out_dir``."""
    out = RunFolder(out_dir)
    out_dir = out.path
    out_dir.mkdir(parents=True, exist_ok=True)
    columns: list[tuple[float, np.ndarray]] = []  # (mouth opening, tiles) per frame, for the strip

    def stream() -> Iterator[EvalFrame]:
        for frame in frames:
            if save_renders:
                save_png(out_dir / RunFolder.RENDERS / f"{frame.frame_id}.png", frame.pred)
            if frame.landmarks is not None and frame.target is not None:
                columns.append((mouth_opening(frame.landmarks), mouth_tiles(frame)))
            yield frame

    result = evaluator.evaluate(stream(), context)
    strip = mouth_strip(columns, strip_frames) if columns else None
    if strip is not None:
        save_png(out_dir / RunFolder.MOUTH_STRIP, strip.astype(np.float32) / 255.0)
    write_csv(out_dir / RunFolder.FRAMES, result.per_frame)
    out.write_metrics(
        {"metrics": result.summary, "unavailable": result.unavailable, "num_frames": len(result.per_frame), **provenance}
    )
    return result, strip
