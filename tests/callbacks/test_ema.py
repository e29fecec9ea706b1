"""ParameterEMA: parameters averaged, buffers live, the live weights kept for a resume."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn

from talker.callbacks import ParameterEMA
from talker.utils.checkpoints import load_checkpoint


class Counter(L.LightningModule):
    """One weight trained towards 1, a step counter and a 0/1 mask buffer (like the level mask)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(3))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("mask", torch.zeros(3))
        self.history: list[torch.Tensor] = []

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        self.steps += 1
        self.mask[: min(int(self.steps), 3)] = 1.0
        return ((self.weight - batch[0]) ** 2).sum()

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        self.history.append(self.weight.detach().clone())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self) -> list[torch.Tensor]:
        return [torch.ones(1, 3)] * 8


def _fit(module: Counter, decay: float, steps: int, root: Path) -> L.Trainer:
    trainer = L.Trainer(
        max_steps=steps, callbacks=[ParameterEMA(decay=decay)], logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=root,
    )
    trainer.fit(module)
    return trainer


def test_parameters_are_averaged_and_buffers_stay_live(tmp_path: Path) -> None:
    module = Counter()
    trainer = _fit(module, decay=0.5, steps=5, root=tmp_path)
    expected = module.history[0]
    for live in module.history[1:]:
        expected = 0.5 * expected + 0.5 * live
    torch.testing.assert_close(module.weight.detach(), expected)
    assert not torch.allclose(module.weight.detach(), module.history[-1])  # the average, not the last step
    assert int(module.steps) == 5 and module.mask.tolist() == [1.0, 1.0, 1.0]

    trainer.save_checkpoint(tmp_path / "last.ckpt")
    checkpoint = load_checkpoint(tmp_path / "last.ckpt")
    torch.testing.assert_close(checkpoint["state_dict"]["weight"], expected)
    assert int(checkpoint["state_dict"]["steps"]) == 5  # the live buffer, not the one at fit start
    torch.testing.assert_close(checkpoint["current_model_state"]["weight"], module.history[-1])


@pytest.mark.parametrize("decay", [-0.1, 1.0])
def test_decay_outside_unit_interval_is_refused(decay: float) -> None:
    with pytest.raises(ValueError, match="callbacks.ema.decay"):
        ParameterEMA(decay=decay)
