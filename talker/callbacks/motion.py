"""Held-out scores of a motion stage: landmark L2 of the generator against the mean-landmark baseline,
and the sync expert's accuracy on synced vs shifted pairs (metrics.json, heldout_landmarks.npy)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info

from talker.motion.metrics import landmark_errors
from talker.motion.sync import sync_accuracy
from talker.runs import RunFolder

PREDICTIONS_FILE = "heldout_landmarks.npy"


@torch.no_grad()
def score_motion(module: L.LightningModule, sequences: list, seed: int = 0) -> tuple[dict[str, float], list[np.ndarray]]:
    """Frame-weighted held-out metrics over ``(landmarks [T, 68, 3], audio [T, A])`` sequences, and the predictions.

    ``l2`` / ``mouth_l2``: the generator at the module's sampling temperature; ``*_mode``: at temperature 0
    (the flow's image of the zero noise); ``baseline_*``: every frame predicted as the mean training face.
    """
    was_training = module.training
    module.eval()
    totals: dict[str, float] = {}
    predictions, frames = [], 0
    mean_face = module.denormalize_landmarks(torch.zeros_like(module.landmark_mean))
    try:
        for landmarks, audio in sequences:
            landmarks = landmarks.to(module.device)
            n = landmarks.shape[0]
            pred = module.predict_landmarks(audio, seed=seed)
            scores = landmark_errors(pred, landmarks)
            mode = module.predict_landmarks(audio, temperature=0.0)
            scores.update({f"{k}_mode": v for k, v in landmark_errors(mode, landmarks).items()})
            scores.update({f"baseline_{k}": v for k, v in landmark_errors(mean_face.expand_as(landmarks), landmarks).items()})
            expert = getattr(module, "sync_expert", None)
            if expert is not None and n >= 3 * expert.window:
                a = module.normalize_audio(audio.to(module.device))[None]
                scores.update(sync_accuracy(expert, module.normalize_landmarks(landmarks)[None], a, seed=seed))
                generated = sync_accuracy(expert, module.normalize_landmarks(pred)[None], a, seed=seed)
                scores["sync_p_generated"] = generated["sync_p_synced"]
            for key, value in scores.items():
                totals[key] = totals.get(key, 0.0) + value * n
            frames += n
            predictions.append(pred.cpu().numpy())
    finally:
        module.train(was_training)
    return {k: v / frames for k, v in totals.items()}, predictions


class MotionEvaluationCallback(L.Callback):
    """At the end of the fit, score the held-out split and write ``metrics.json`` and the predicted landmarks."""

    def __init__(self, run_dir: str, seed: int = 0) -> None:
        self.run_dir, self.seed = Path(run_dir), seed

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        datamodule = trainer.datamodule
        sequences = datamodule.val_sequences()
        metrics, predictions = score_motion(module, sequences, self.seed)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        np.save(self.run_dir / PREDICTIONS_FILE, np.concatenate(predictions).astype(np.float32))
        RunFolder(self.run_dir).write_metrics(
            {
                "metrics": metrics,
                "unavailable": {},
                "num_frames": sum(lm.shape[0] for lm, _ in sequences),
                "split": "val",
                "dataset": str(datamodule.dataset_dir()),
                "global_step": trainer.global_step,
            },
        )
        scalars = {f"eval/{k}": v for k, v in metrics.items()}
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.log_hyperparams(logger.hparams, scalars, step=trainer.global_step)
                logger.experiment.flush()
            else:
                logger.log_metrics(scalars, step=trainer.global_step)
        rank_zero_info("[talker] held-out motion metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())))
