"""Cross-driven evaluation (R2-Talker Table 2): drive a trained head with out-of-domain speech, score the video.

The head is driven exactly as ``python -m talker.drive`` drives a run folder (``talker.inference``:
the dataset's poses played forwards and backwards, over its torso-and-background frames) and the
frames are scored without ground truth by the shared evaluator, so only Sync is computed. Sync's
face box comes from the dataset landmarks of the frame whose pose each driven frame plays back (the
head is rendered at that pose, smoothed), as the self-driven scores take it from the held-out
frame's landmarks. Files, per setting::

    <run>/cross/<setting>/<setting>.mp4     the driven video, the audio muxed in
    <run>/cross/<setting>/metrics.json      Sync (or why it is unavailable), tags {method, setting}
    <run>/cross/<setting>/frames.csv        per-frame values

``talker.reporting`` picks the metrics.json files up by their tags (experiments/table2.yaml). A head
conditioned on landmarks is driven through a motion stage (:class:`~talker.inference.MotionStage`),
as GeneFace++ dagger and R2-Talker are at test time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info

from talker.audio import AudioError, load_audio, write_wav
from talker.config import ConfigError
from talker.data.datamodule import TalkingHeadDataModule
from talker.evaluation.scoring import score_frames
from talker.head.model import TalkingHead
from talker.inference import FPS, MotionStage, driven_frames, pingpong, write_video
from talker.metrics import EvalContext, EvalFrame, Evaluator
from talker.runs import RunFolder

SAMPLE_RATE = 16000


@torch.no_grad()
def drive_and_score(
    head: TalkingHead,
    datamodule: TalkingHeadDataModule,
    evaluator: Evaluator,
    run_dir: str | Path,
    setting: str,
    audio_file: Path,
    method: str,
    motion: MotionStage | None = None,
    seconds: float | None = None,
    pose_smoothing: float = 2.0,
    seed: int = 0,
) -> dict[str, float]:
    """Drive ``head`` with one audio file, write the video into ``<run_dir>/cross/<setting>`` and score
    it; returns the summary metrics. ``motion`` turns the audio into landmarks for a landmark head."""
    try:
        audio = load_audio(audio_file)
    except AudioError as exc:
        raise ConfigError(f"callbacks.cross_driven.audio.{setting}: {exc}") from exc
    if seconds is not None:
        audio = audio[: int(seconds * SAMPLE_RATE)]
    num_frames = int(np.ceil(audio.shape[0] / SAMPLE_RATE * FPS))
    landmarks = None
    if "landmarks" in head.conditioning.inputs:
        assert motion is not None, "a landmark head is driven through a motion stage"
        landmarks = motion.landmarks(audio, head.device, seed=seed)[:num_frames]
        num_frames = landmarks.shape[0]
    frames = list(driven_frames(  # written, then scored: a few seconds, held together
        head, datamodule.train_split, landmarks, audio, num_frames, pose_smoothing,
        conditions=datamodule.conditions, audio_features=datamodule.audio_features,
    ))
    out_dir = RunFolder(run_dir).cross(setting)
    out_dir.mkdir(parents=True, exist_ok=True)
    clip = out_dir / f"{setting}.wav"
    write_wav(clip, audio)
    write_video(out_dir / f"{setting}.mp4", frames, clip)
    clip.unlink()

    split = datamodule.train_split
    order = pingpong(num_frames, len(split))

    def stream() -> Iterator[EvalFrame]:
        for i, frame in enumerate(frames):
            pred = torch.from_numpy(frame).float() / 255.0
            yield EvalFrame(i, pred, landmarks=split.lms[int(order[i])], time_index=i)

    context = EvalContext(audio=audio, sample_rate=SAMPLE_RATE, fps=float(FPS), has_reference=False)
    provenance = {
        "source": str(out_dir / f"{setting}.mp4"),
        "audio": str(audio_file.resolve()),
        "seconds": audio.shape[0] / SAMPLE_RATE,
        "tags": {"method": method, "setting": setting},
    }
    result, _ = score_frames(stream(), evaluator, context, out_dir, provenance, save_renders=False)
    summary = ", ".join(f"{k}={v:.3f}" for k, v in result.summary.items()) or "nothing computable"
    rank_zero_info(f"[talker] cross-driven {setting} ({num_frames} frames, {out_dir}): {summary}")
    for name, reason in result.unavailable.items():
        rank_zero_info(f"[talker] {setting}: {name} unavailable: {reason}")
    return result.summary
