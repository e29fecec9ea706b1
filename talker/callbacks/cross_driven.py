"""Cross-driven evaluation (Table 2) at the end of a fit: the callback over ``talker.evaluation.cross_driven``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import lightning as L

from talker.config import ConfigError
from talker.evaluation.cross_driven import drive_and_score
from talker.inference import MotionStage
from talker.metrics import Evaluator


class CrossDrivenEvaluation(L.Callback):
    """Drives the head with each setting's audio when the fit ends and scores the videos (Table 2).

    Args:
        evaluator: the metrics (the run's own evaluator config; without reference only Sync runs).
        run_dir: the run folder; results go to ``<run_dir>/cross/<setting>/``.
        audio: ``setting -> audio file`` (any ffmpeg-readable file), e.g. ``cross_gender``,
            ``cross_lingual``; checked when the fit starts.
        method: the ``method`` tag the table rows select (the system's name).
        motion: run folder of the trained motion stage that drives heads conditioned on landmarks
            (experiment=baselines trains it before its cells: ``needs.motion``); None: audio heads only.
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
        motion: str | None = None,
        seconds: float | None = None,
        pose_smoothing: float = 2.0,
        seed: int = 0,
    ) -> None:
        self.evaluator, self.run_dir = evaluator, Path(run_dir)
        self.audio = {str(k): Path(v) for k, v in audio.items()}
        self.method, self.motion, self.seconds = method, motion, seconds
        self.pose_smoothing, self.seed = pose_smoothing, seed

    def motion_stage(self, module: L.LightningModule) -> MotionStage | None:
        """The motion stage a landmark head is driven through (checked: a trained motion run)."""
        if "landmarks" not in module.head.conditioning.inputs:
            return None
        if self.motion is None:
            raise ConfigError(
                "callbacks.cross_driven.motion is null but the head is conditioned on landmarks: give it a motion stage"
            )
        return MotionStage(self.motion, "callbacks.cross_driven.motion")

    def on_fit_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        for setting, path in self.audio.items():  # fail now, not after training
            if not path.is_file():
                raise ConfigError(
                    f"callbacks.cross_driven.audio.{setting}={path}: audio file does not exist "
                    "(the default reads paths.shared_dir/data/audio; callbacks.cross_driven=null skips cross-driving)"
                )
        self.motion_stage(module)

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        motion = self.motion_stage(module)
        head = module.head
        was_training = head.training
        head.eval()
        try:
            for setting, path in self.audio.items():
                self.drive_and_score(module, trainer.datamodule, setting, path, motion)
        finally:
            head.train(was_training)

    def drive_and_score(
        self, module: L.LightningModule, datamodule: L.LightningDataModule, setting: str, path: Path,
        motion: MotionStage | None = None,
    ) -> dict[str, float]:
        """Drive the head with one audio file, write the video and score it; returns the summary metrics."""
        motion = motion if motion is not None else self.motion_stage(module)
        return drive_and_score(
            module.head, datamodule, self.evaluator, self.run_dir, setting, path, self.method, motion, self.seconds,
            self.pose_smoothing, self.seed,
        )
