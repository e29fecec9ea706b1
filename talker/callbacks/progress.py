"""Progress lines for logs: when stdout is not a terminal (SLURM, nohup, CI) a progress bar shows
nothing until the run ends, so this callback switches the bar off and writes one line at a steady
interval instead::

    step 1200/2400 (50%) | head | loss 0.00123 | psnr 29.10 dB | 11.2 steps/s | 1m47s elapsed | 1m47s left

Lines go to the ``talker.progress`` logger. Inside a Hydra run the root logger has Hydra's handlers
(the console, and ``<run folder>/fit.log``), so each line lands on stdout and in the run's log
file; without logging handlers (a script calling :func:`talker.fit.train`) lines are printed.
On a terminal nothing changes: the usual bar.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import lightning as L

LOGGER = logging.getLogger("talker.progress")
LOGGER.setLevel(logging.INFO)
WHEN = ("auto", "always", "never")


def duration(seconds: float) -> str:
    """``3725 -> '1h02m'``, ``107 -> '1m47s'``, ``9.6 -> '10s'``."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class ProgressLog(L.Callback):
    """One progress line every ``every_s`` seconds of training (and one at its end).

    Args:
        every_s: seconds between lines.
        when: ``auto`` (only when stdout is not a terminal; the bar is switched off then),
            ``always`` or ``never``.
    """

    def __init__(self, every_s: float = 30.0, when: str = "auto") -> None:
        if when not in WHEN:
            raise ValueError(f"when={when!r}: expected one of {', '.join(WHEN)}")
        if every_s <= 0:
            raise ValueError(f"every_s={every_s}: must be positive")
        self.every_s, self.when = float(every_s), when
        self.active = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.active = self.when == "always" or (self.when == "auto" and not sys.stdout.isatty())
        if self.active and self.when == "auto" and trainer.progress_bar_callback is not None:
            trainer.progress_bar_callback.disable()  # a bar in a log file is noise until the end

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = self.last_time = time.perf_counter()
        self.first_step = self.last_step = trainer.global_step  # a resumed run starts part-way

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if self.active and trainer.is_global_zero and time.perf_counter() - self.last_time >= self.every_s:
            self.write(self.line(trainer, pl_module))

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.active and trainer.is_global_zero:
            elapsed = time.perf_counter() - self.started
            steps = trainer.global_step - self.first_step
            self.write(f"trained {trainer.global_step}/{self.total(trainer)} steps in {duration(elapsed)} "
                       f"({steps / max(elapsed, 1e-9):.1f} steps/s)")

    def line(self, trainer: L.Trainer, pl_module: L.LightningModule) -> str:
        now, step, total = time.perf_counter(), trainer.global_step, self.total(trainer)
        recent = (step - self.last_step) / max(now - self.last_time, 1e-9)
        overall = (step - self.first_step) / max(now - self.started, 1e-9)
        self.last_time, self.last_step = now, step
        parts = [f"step {step}/{total} ({step / total:.0%})" if total else f"step {step}"]
        stage = getattr(pl_module, "stage", None)
        if callable(stage):
            parts.append(str(stage()))
        metrics = trainer.callback_metrics
        if "train/loss" in metrics:
            parts.append(f"loss {float(metrics['train/loss']):.4g}")
        if "train/psnr" in metrics:
            parts.append(f"psnr {float(metrics['train/psnr']):.2f} dB")
        parts.append(f"{recent:.1f} steps/s")
        parts.append(f"{duration(now - self.started)} elapsed")
        if total and overall > 0:
            parts.append(f"{duration((total - step) / overall)} left")
        return " | ".join(parts)

    @staticmethod
    def total(trainer: L.Trainer) -> int:
        return max(int(trainer.max_steps), 0)

    @staticmethod
    def write(line: str) -> None:
        if LOGGER.hasHandlers():
            LOGGER.info(line)
        else:
            print(f"[talker] {line}", flush=True)
