"""Evaluation at the end of a fit: the callback over ``talker.evaluation.heldout`` (metrics.json,
frames.csv, renders/, mouth_strip.png, speed.json) that also logs the scores to TensorBoard."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info

from talker.evaluation.heldout import evaluate_heldout
from talker.metrics import Evaluator, SpeedProfile


class EvaluationCallback(L.Callback):
    """Scores the held-out split once training ends and writes metrics.json into the run folder.

    Args:
        evaluator: the metrics (configs/callbacks/default.yaml).
        run_dir: where the result files go.
        save_renders: keep every rendered held-out frame as renders/<id>.png.
        strip_frames: columns of mouth_strip.png.
        speed: a :class:`SpeedProfile` to time inference after scoring (speed.json), or None.
    """

    def __init__(
        self, evaluator: Evaluator, run_dir: str, save_renders: bool = True, strip_frames: int = 8, speed: SpeedProfile | None = None
    ) -> None:
        self.evaluator = evaluator
        self.run_dir = Path(run_dir)
        self.save_renders = save_renders
        self.strip_frames = strip_frames
        self.speed = speed

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        done = evaluate_heldout(
            module.head, trainer.datamodule, self.evaluator, self.run_dir, {"global_step": trainer.global_step},
            speed=self.speed, save_renders=self.save_renders, strip_frames=self.strip_frames,
        )
        result, strip = done.result, done.strip
        scalars = {f"eval/{k}": v for k, v in result.summary.items()}
        if done.speed is not None:
            scalars.update({f"speed/{k}_ms": v for k, v in done.speed["stages_ms"].items()})
            scalars.update({"speed/total_ms": done.speed["total_ms"], "speed/fps": done.speed["fps"]})
        for logger in trainer.loggers:
            if not isinstance(logger, TensorBoardLogger):
                logger.log_metrics(scalars, step=trainer.global_step)
                continue
            if strip is not None:
                logger.experiment.add_image("eval/mouth_strip", strip, trainer.global_step, dataformats="HWC")
            # The run's hyperparameters with its final metrics (also logged as scalars at this step):
            # TensorBoard's hparams view then lists every run of a grid with its held-out scores.
            # train() logged the hyperparameters without metrics, which writes no hparams summary,
            # so this is the run's first one -- the one TensorBoard reads.
            logger.log_hyperparams(logger.hparams, scalars, step=trainer.global_step)
            logger.experiment.flush()
        summary = ", ".join(f"{k}={v:.3f}" for k, v in result.summary.items())
        rank_zero_info(f"[talker] held-out metrics ({len(result.per_frame)} frames): {summary}")
        for name, reason in result.unavailable.items():
            rank_zero_info(f"[talker] {name} unavailable: {reason}")
