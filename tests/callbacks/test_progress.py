"""Progress lines when stdout is not a terminal: step/total, loss, PSNR, steps/s, time left."""

from __future__ import annotations

import logging
import re
import sys

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from talker.callbacks import ProgressLog
from talker.callbacks.progress import duration


class Toy(L.LightningModule):
    """A model that logs what the head module logs (train/loss with the bar, train/psnr)."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        loss = (self.layer(batch) ** 2).mean() + 1e-3
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/psnr", -10 * torch.log10(loss.detach()), prog_bar=True)
        return loss

    def stage(self) -> str:
        return "head"

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(torch.randn(32, 4), batch_size=4)


def fit(progress: ProgressLog, steps: int = 6) -> L.Trainer:
    trainer = L.Trainer(max_steps=steps, callbacks=[progress], logger=False, enable_checkpointing=False,
                        enable_model_summary=False, accelerator="cpu")
    trainer.fit(Toy())
    return trainer


LINE = re.compile(
    r"step (\d)/6 \(\d+%\) \| head \| loss [\d.e-]+ \| psnr -?[\d.]+ dB \| [\d.]+ steps/s \| \d+s elapsed \| \d+s left$"
)


def test_outside_a_terminal_a_line_per_interval_and_no_bar(caplog: pytest.LogCaptureFixture,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    caplog.set_level(logging.INFO, logger="talker.progress")
    trainer = fit(ProgressLog(every_s=1e-9))  # every step
    lines = [r.getMessage() for r in caplog.records if r.name == "talker.progress"]
    assert [int(LINE.match(line).group(1)) for line in lines[:-1]] == [1, 2, 3, 4, 5, 6]
    assert re.fullmatch(r"trained 6/6 steps in \d+s \([\d.]+ steps/s\)", lines[-1])
    assert trainer.progress_bar_callback.is_disabled


def test_on_a_terminal_the_bar_stays_and_no_lines(caplog: pytest.LogCaptureFixture,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    caplog.set_level(logging.INFO, logger="talker.progress")
    trainer = fit(ProgressLog(every_s=1e-9))
    assert not [r for r in caplog.records if r.name == "talker.progress"]
    assert trainer.progress_bar_callback.is_enabled


def test_the_interval_is_kept(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="talker.progress")
    fit(ProgressLog(every_s=3600, when="always"))
    assert [r.getMessage().split()[0] for r in caplog.records if r.name == "talker.progress"] == ["trained"]


def test_durations_read_as_a_person_writes_them() -> None:
    assert [duration(s) for s in (9.6, 107, 3725)] == ["10s", "1m47s", "1h02m"]
    with pytest.raises(ValueError, match="when='sometimes'"):
        ProgressLog(when="sometimes")
