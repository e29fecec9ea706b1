"""Cross-driven evaluation (R2-Talker Table 2): drive the trained head with out-of-domain speech, score the video.

At the end of a fit, for every ``setting -> audio file``, the head is driven exactly as
``python -m talker.drive`` drives a run folder (the dataset's poses played forwards and backwards,
over its torso-and-background frames) and the frames are scored without ground truth by the shared
evaluator, so only Sync is computed. Sync's face box comes from the dataset landmarks of the frame
whose pose each driven frame plays back (the head is rendered at that pose, smoothed), as the
self-driven scores take it from the held-out frame's landmarks. Files, per setting::

    <run_dir>/cross/<setting>/<setting>.mp4     the driven video, the audio muxed in
    <run_dir>/cross/<setting>/metrics.json      Sync (or why it is unavailable), tags {method, setting}
    <run_dir>/cross/<setting>/frames.csv        per-frame values

``talker.reporting`` picks the metrics.json files up by their tags (experiments/table2.yaml). A head
conditioned on landmarks is driven through a motion stage (:class:`MotionRun`), as GeneFace++ dagger
and R2-Talker are at test time.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info

from talker.audio import AudioError, load_audio, write_wav
from talker.callbacks.evaluation import score_frames
from talker.config import ConfigError
from talker.drive import FPS, Stage, drive_landmarks, pingpong, render_driven, write_video
from talker.metrics import EvalContext, EvalFrame, Evaluator
from talker.runs import RunFolder

SAMPLE_RATE = 16000


class MotionRun:
    """The motion stage (audio -> landmarks) that drives a landmark-conditioned head.

    A run folder of ``experiment=motion`` on the head's identity. With ``overrides`` it is trained
    there on first use, by ``python -m talker.fit <overrides>`` in a subprocess (its output goes to
    ``<run_dir>.log``); a lock file lets parallel cells of a grid share one training.

    Args:
        run_dir: the motion run folder.
        overrides: ``talker.fit`` overrides that train it (e.g. ``[experiment=motion, ...]``); None:
            the folder must hold a trained run already.
        max_steps: shorten that training to this many steps (``trainer.max_steps``); None: as configured.
    """

    def __init__(self, run_dir: str, overrides: Sequence[str] | None = None, max_steps: int | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.overrides = list(overrides) if overrides is not None else None
        if self.overrides is not None and max_steps is not None:
            self.overrides.append(f"trainer.max_steps={max_steps}")

    def trained(self) -> bool:
        return RunFolder(self.run_dir).is_trained()

    def ensure(self) -> Stage:
        """The trained motion stage, training it first when needed and possible."""
        self.run_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir.with_name(f".{self.run_dir.name}.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # a sibling cell may be training it right now
            if not self.trained():
                if self.overrides is None:
                    raise ConfigError(
                        f"{self.run_dir}: no trained motion stage there (train one with python -m talker.fit experiment=motion)"
                    )
                self._train()
        stage = Stage(self.run_dir, "motion stage")
        if not stage.is_motion:
            raise ConfigError(f"{self.run_dir}: not a motion run (its model is {stage.cfg.model._target_})")
        return stage

    def _train(self) -> None:
        log = self.run_dir.with_suffix(".log")
        command = [sys.executable, "-m", "talker.fit", *self.overrides, f"hydra.run.dir={self.run_dir}"]
        rank_zero_info(f"[talker] training the motion stage: {' '.join(command[1:])} (log: {log})")
        with open(log, "w") as out:
            proc = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
        if proc.returncode != 0 or not self.trained():
            tail = log.read_text().strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(
                f"motion stage training failed (exit {proc.returncode}): {tail[0]} (full log: {log})"
            )

    def landmarks(self, audio: np.ndarray, device: torch.device, seed: int = 0) -> np.ndarray:
        """``[T]`` 16 kHz audio -> ``[N, 68, 3]`` landmarks, one per video frame."""
        return drive_landmarks(self.ensure(), audio, device, temperature=None, smoothing=None, seed=seed)


class CrossDrivenEvaluation(L.Callback):
    """Drives the head with each setting's audio when the fit ends and scores the videos (Table 2).

    Args:
        evaluator: the metrics (the run's own evaluator config; without reference only Sync runs).
        run_dir: the run folder; results go to ``<run_dir>/cross/<setting>/``.
        audio: ``setting -> audio file`` (any ffmpeg-readable file), e.g. ``cross_gender``,
            ``cross_lingual``; checked when the fit starts.
        method: the ``method`` tag the table rows select (the system's name).
        motion: the motion stage for heads conditioned on landmarks (None: audio-conditioned heads only).
        seconds: use at most this much of each audio file (None: all of it).
        pose_smoothing: Gaussian smoothing of the played-back head poses, in frames.
        seed: motion sampling seed.
    """

    def __init__(
        self,
        evaluator: Evaluator,
        run_dir: str,
        audio: Mapping[str, str],
        method: str,
        motion: MotionRun | None = None,
        seconds: float | None = None,
        pose_smoothing: float = 2.0,
        seed: int = 0,
    ) -> None:
        self.evaluator, self.run_dir = evaluator, Path(run_dir)
        self.audio = {str(k): Path(v) for k, v in audio.items()}
        self.method, self.motion, self.seconds = method, motion, seconds
        self.pose_smoothing, self.seed = pose_smoothing, seed

    def on_fit_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        for setting, path in self.audio.items():  # fail now, not after training
            if not path.is_file():
                raise ConfigError(
                    f"callbacks.cross_driven.audio.{setting}={path}: audio file does not exist "
                    "(the default reads paths.shared_dir/data/audio; callbacks.cross_driven=null skips cross-driving)"
                )
        if "landmarks" in getattr(module.conditioning, "inputs", ()) and self.motion is None:
            raise ConfigError(
                "callbacks.cross_driven.motion is null but the head is conditioned on landmarks: give it a motion stage"
            )

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        datamodule = trainer.datamodule
        was_training = module.training
        module.eval()
        try:
            for setting, path in self.audio.items():
                self.drive_and_score(module, datamodule, setting, path)
        finally:
            module.train(was_training)

    def drive_and_score(
        self, module: L.LightningModule, datamodule: L.LightningDataModule, setting: str, path: Path
    ) -> dict[str, float]:
        """Drive the head with one audio file, write the video and score it; returns the summary metrics."""
        try:
            audio = load_audio(path)
        except AudioError as exc:
            raise ConfigError(f"callbacks.cross_driven.audio.{setting}: {exc}") from exc
        if self.seconds is not None:
            audio = audio[: int(self.seconds * SAMPLE_RATE)]
        num_frames = int(np.ceil(audio.shape[0] / SAMPLE_RATE * FPS))
        landmarks = None
        if "landmarks" in getattr(module.conditioning, "inputs", ()):
            assert self.motion is not None
            landmarks = self.motion.landmarks(audio, module.device, self.seed)[:num_frames]
            num_frames = landmarks.shape[0]
        frames = render_driven(
            module, datamodule.train_split, landmarks, audio, num_frames, self.pose_smoothing,
            conditions=datamodule.conditions, audio_features=datamodule.audio_features,
        )
        out_dir = RunFolder(self.run_dir).cross(setting)
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
            "audio": str(path.resolve()),
            "seconds": audio.shape[0] / SAMPLE_RATE,
            "tags": {"method": self.method, "setting": setting},
        }
        result, _ = score_frames(stream(), self.evaluator, context, out_dir, provenance, save_renders=False)
        summary = ", ".join(f"{k}={v:.3f}" for k, v in result.summary.items()) or "nothing computable"
        rank_zero_info(f"[talker] cross-driven {setting} ({num_frames} frames, {out_dir}): {summary}")
        for name, reason in result.unavailable.items():
            rank_zero_info(f"[talker] {setting}: {name} unavailable: {reason}")
        return result.summary
