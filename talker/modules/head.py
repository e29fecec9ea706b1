"""The one LightningModule that trains a talking head, whatever its conditioning strategy or system.

It wires Lightning's hooks to parts it is given: the model (:class:`~talker.head.TalkingHead`:
field, strategy, occupancy grid), the stages (``talker.stages``: head, lips, torso, each with its
loss, frozen parts and learning-rate shape) and the plan that says where each stage begins
(:class:`~talker.schedules.StagePlan`: paper steps times ``schedule.scale``, so a shortened run
keeps the schedule's shape):

====== =========================================== =============================================
stage  paper steps (R2-Talker)                      what is trained
====== =========================================== =============================================
head   0 .. lips_start                              head field + strategy; photometric loss (MSE)
                                                    + opacity entropy; lr x0.1 at 150K, x0.01 at 180K
lips   lips_start (200K) .. head_steps (240K)       lr reset; every other step a lip patch with
                                                    MSE + 0.01 x LPIPS (AlexNet), the others MSE
torso  head_steps .. head_steps + torso_steps       head frozen; RAD-NeRF's 2D torso field under it
====== =========================================== =============================================

Systems other than R2-Talker (``configs/system``) inject their own parts instead of branching
here: the optimiser, the stages' learning-rate shapes, the head stage's photometric loss, the field
and the torso field.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from talker.encoders.hashgrid import hash_grids
from talker.head.model import TalkingHead
from talker.schedules.plan import StagePlan
from talker.stages.base import Diverged, Stage, StepContext

# TensorBoard's train/stage curve: 0 in the head stage, 1 in the lips stage, 2 in the torso stage.
STAGE_INDEX = {"head": 0, "lips": 1, "torso": 2}


class HeadModule(L.LightningModule):
    """Lightning's hooks over a :class:`TalkingHead`, its stages and their plan.

    Every ablation arm and system is this class with different injected parts.

    Args:
        head: the model.
        stages: ``name -> Stage`` for every stage the plan may run (``head``, ``lips``, ``torso``).
        plan: where the stages begin and end.
        optimizer: factory ``(param_groups) -> Optimizer`` (a Hydra partial); None: R2-Talker's
            AdamW with instant-NGP's betas (0.9, 0.99) and eps 1e-15.
        lr_encoder, lr_net: learning rates of hash tables and of everything else.
        weight_decay: weight decay of everything but the hash tables.
        weight_decay_encoder: weight decay of the hash tables (instant-NGP practice: none).
        fused_optimizer: build the optimiser with PyTorch's fused kernel (``fused=True``, Adam and
            AdamW): one pass over each parameter instead of one per arithmetic operation, about 10x
            faster on CPU, where the dense update of the hash tables is a fifth of a quickstart step;
            the same update up to float32 rounding; the quickstart's held-out frame PSNR within
            0.02 dB of the plain optimiser's (docs/training_profile.md).
        compile_lookup: run the head's hash-grid lookups through ``torch.compile``
            (:meth:`HashGrid.compile_lookup`): the same encodings and table gradients, fused into one
            loop per level group; compiling costs about a minute at the start of a run.
    """

    def __init__(
        self,
        head: TalkingHead,
        stages: Mapping[str, Stage],
        plan: StagePlan,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        lr_encoder: float = 1e-2,
        lr_net: float = 1e-3,
        weight_decay: float = 1e-2,
        weight_decay_encoder: float = 0.0,
        fused_optimizer: bool = True,
        compile_lookup: bool = False,
    ) -> None:
        super().__init__()
        self.head = head
        for grid in hash_grids(head):
            grid.compile_lookup(compile_lookup)
        self.plan = plan
        missing = [name for name in plan.stages if stages.get(name) is None]
        if missing:
            raise ValueError(f"the schedule runs the {', '.join(missing)} stage but model.stages has none")
        self.stages = {name: stages[name] for name in plan.stages}
        for stage in self.stages.values():
            stage.setup(head)
        self.optimizer_factory = optimizer if optimizer is not None else functools.partial(
            torch.optim.AdamW, betas=(0.9, 0.99), eps=1e-15
        )
        self.lr_encoder, self.lr_net = lr_encoder, lr_net
        self.weight_decay, self.weight_decay_encoder = weight_decay, weight_decay_encoder
        self.fused_optimizer = fused_optimizer
        self._register_load_state_dict_pre_hook(_checkpoint_of_the_flat_module)

    # -- stages ----------------------------------------------------------------------------------

    def stage(self, step: int | None = None) -> str:
        """The stage at ``step`` (default: the global step)."""
        return self.plan.stage(self.global_step if step is None else step)

    def lr_factor(self, step: int) -> float:
        """Learning-rate multiplier at real ``step`` (the shape of that step's stage)."""
        return self.stages[self.plan.stage(step)].lr_factor(step, self.plan)

    # -- Lightning hooks --------------------------------------------------------------------------

    def on_fit_start(self) -> None:
        for stage in self.stages.values():
            stage.check(self.plan, self.trainer.max_steps)  # fail now, not hours later
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "train_conditions"):
            self.head.prepare(datamodule.train_conditions())
        split = getattr(datamodule, "train_split", None)
        occupancy = self.head.occupancy
        if split is not None and not bool(occupancy.frustum_marked):
            occupancy.mark_unseen(split.poses, split.intrinsics, split.width, split.height)
            seen = occupancy.seen.float().mean().item()
            rank_zero_info(f"[talker] occupancy grid: {seen:.1%} of the cells are seen by a training camera")

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        step = self.global_step
        stage = self.stages[self.plan.stage(step)]
        self.head.on_train_step(self.plan.paper(step))
        stage.on_step_start(self.head, step)
        if stage.updates_occupancy and self.head.occupancy_due(step):
            conditions = self.trainer.datamodule.train_conditions()
            self.head.update_occupancy(conditions, self.global_rank, self.trainer.world_size)

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor | None:
        name = self.plan.stage(self.global_step)
        self.log("train/stage", float(STAGE_INDEX[name]))
        ctx = StepContext(step=self.global_step, plan=self.plan, log=self.log)
        try:
            loss = self.stages[name].training_step(self.head, batch, ctx)
        except Diverged as exc:
            raise FloatingPointError(
                f"{exc} (lower model.lr_net={self.lr_net} or model.lr_encoder={self.lr_encoder}); "
                "checkpoints so far are kept"
            ) from exc
        if loss is None and self.trainer.world_size > 1:
            # Under DDP every rank must reduce a gradient for every parameter: this one adds zeros.
            return sum(p.sum() for p in self.parameters() if p.requires_grad) * 0.0
        return loss

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> dict[str, Tensor]:
        out = self.head.render_frame(batch)
        image = batch["image"]
        pred = out.rgb.view_as(image).clamp(0, 1)
        psnr = -10 * torch.log10(torch.mean((pred - image) ** 2))
        self.log("val/psnr", psnr, batch_size=1)
        return {"pred": pred, "depth": out.depth.view(image.shape[:2]), "opacity": out.opacity.view(image.shape[:2])}

    def configure_optimizers(self) -> dict[str, Any]:
        groups = self.head.param_groups(self.lr_encoder, self.lr_net, self.weight_decay, self.weight_decay_encoder)
        if not self.fused_optimizer:
            optimizer = self.optimizer_factory(groups)
        else:
            try:
                optimizer = self.optimizer_factory(groups, fused=True)
            except TypeError as exc:
                raise TypeError(
                    f"model.fused_optimizer=true needs an optimiser with a fused kernel (torch.optim.Adam, AdamW); "
                    f"model.optimizer gives {self.optimizer_factory}: {exc}"
                ) from exc
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: self.lr_factor(step))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def _checkpoint_of_the_flat_module(state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """Checkpoints written before the model moved into ``head`` (``field.*``, ``occupancy.*``, ...)
    load with their keys moved under ``head.``."""
    for key in [k for k in state_dict if k.startswith(prefix) and not k.startswith(prefix + "head.")]:
        state_dict[prefix + "head." + key[len(prefix):]] = state_dict.pop(key)

