"""The torso stage: RAD-NeRF's 2D torso field learned under the frozen head."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from talker.head.model import TalkingHead
from talker.losses import mse
from talker.schedules.lr import LRSchedule, StepDecay
from talker.stages.base import Stage, StepContext


class TorsoStage(Stage):
    """After the head stages: the frozen head, rendered over the torso field over ``bc``, must give
    the frame (MSE). Frames rendered after this stage show the learned torso under the head.

    Args:
        lr: learning-rate shape; None: R2-Talker's step decay over ``lr_milestones`` stretched to the
            torso stage's length (the head's shape repeated).
        lr_milestones: paper steps of the head schedule's decay (150K, 180K of 240K).
    """

    name = "torso"
    updates_occupancy = False  # the head is frozen

    def __init__(
        self,
        lr: LRSchedule | None = None,
        lr_milestones: Sequence[int] = (150_000, 180_000),
    ) -> None:
        super().__init__(lr if lr is not None else StepDecay(lr_milestones, stretch=True))

    def setup(self, head: TalkingHead) -> None:
        head.build_torso()

    def frozen(self, head: TalkingHead) -> list[nn.Module]:
        return [head.field, head.conditioning]

    def on_step_start(self, head: TalkingHead, step: int) -> None:
        head.torso_trained.fill_(True)

    def training_step(self, head: TalkingHead, batch: Mapping[str, Any], ctx: StepContext) -> Tensor:
        assert head.torso is not None
        frame = {**batch["cond"], "index": batch["index"]}
        with torch.no_grad():  # the head is frozen: rendered over black, composited below
            rendered = head.render(
                batch["rays_o"], batch["rays_d"], torch.zeros_like(batch["bc"]), batch["cond"], frame=frame
            )
        width, height = (int(v) for v in batch["size"])
        background = head.torso_background(batch["pixels"], width, height, batch["pose"], batch["bc"])
        pred = rendered.rgb + (1 - rendered.opacity).unsqueeze(-1) * background
        loss = mse(pred, batch["rgb"])
        ctx.log("train/loss", loss, prog_bar=True, sync_dist=True)
        ctx.log("train/loss_torso", loss, sync_dist=True)
        ctx.log("train/psnr", -10 * torch.log10(loss.detach()), prog_bar=True)
        return loss
