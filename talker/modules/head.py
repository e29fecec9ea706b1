"""The one LightningModule that trains a conditioned head field, whatever its conditioning strategy."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from talker.conditioning.base import Conditioning, ConditioningStrategy
from talker.encoders.hashgrid import HashGrid
from talker.fields.base import Field
from talker.losses import mse, opacity_entropy
from talker.rendering import (
    ConditionSweep,
    OccupancyGrid,
    RayMarcher,
    RaySampler,
    RenderOutput,
    render_chunked,
    render_rays,
)
from talker.schedules.levels import LevelSchedule


class HeadModule(L.LightningModule):
    """Head stage: ray batches of one frame -> conditioned field -> volume rendering -> photometric loss.

    Every ablation arm is this class with a different injected ``conditioning`` (and ``levels``).

    Args:
        field: factory ``(cond_spec=...) -> Field`` (a Hydra partial).
        conditioning: the conditioning strategy; bound to the field's hidden widths here.
        levels: hash-level schedule of the field's positional encoder.
        occupancy: factory of the occupancy grid over the field's box.
        sampler: where rays are sampled (default: a ``RayMarcher`` over the occupancy grid).
        schedule_scale: real steps per paper step (``schedule.scale``).
        lr_milestones: paper steps at which the learning rate drops (x0.1, then x0.01).
        lr_encoder, lr_net: AdamW learning rates of hash tables and of MLPs.
        weight_decay: AdamW weight decay of MLP weights.
        opacity_weight: weight of the opacity entropy regulariser.
        occupancy_update_every: steps between occupancy-grid updates.
        occupancy_warmup: step of the first update (until then every cell the training cameras
            see counts as occupied).
        occupancy_conditions: training conditions per update; every training condition is
            visited once per sweep of updates (see ``talker.rendering.occupancy``).
        eval_chunk: rays per chunk when rendering whole frames.
    """

    def __init__(
        self,
        field: Callable[..., Field],
        conditioning: ConditioningStrategy,
        levels: LevelSchedule,
        occupancy: Callable[..., OccupancyGrid],
        sampler: RaySampler | None = None,
        schedule_scale: float = 1.0,
        lr_milestones: tuple[int, ...] = (150_000, 180_000),
        lr_encoder: float = 1e-2,
        lr_net: float = 1e-3,
        weight_decay: float = 1e-2,
        opacity_weight: float = 1e-4,
        occupancy_update_every: int = 16,
        occupancy_warmup: int = 64,
        occupancy_conditions: int = 8,
        eval_chunk: int = 32768,
    ) -> None:
        super().__init__()
        self.conditioning = conditioning
        self.field = field(cond_spec=conditioning.spec)
        self.conditioning.bind(self.field.modulation_widths, self.field.position_dim)
        self.levels = levels
        self.occupancy = occupancy(bound=self.field.bound)
        self.sampler = sampler if sampler is not None else RayMarcher(max_steps=16, dt_gamma=1 / 256)
        self.sweep = ConditionSweep(batch_size=occupancy_conditions)
        self.schedule_scale = schedule_scale
        self.lr_milestones = tuple(lr_milestones)
        self.lr_encoder, self.lr_net, self.weight_decay = lr_encoder, lr_net, weight_decay
        self.opacity_weight = opacity_weight
        self.occupancy_update_every = occupancy_update_every
        self.occupancy_warmup = occupancy_warmup
        self.eval_chunk = eval_chunk

    # -- rendering ---------------------------------------------------------------------------

    def paper_step(self, step: int | None = None) -> float:
        """The paper's step count that ``step`` (default: the global step) corresponds to."""
        return (self.global_step if step is None else step) / self.schedule_scale

    def render(
        self,
        rays_o: Tensor,
        rays_d: Tensor,
        background: Tensor,
        cond: Mapping[str, Tensor],
        *,
        frame: Mapping[str, Any] | None = None,
        perturb: bool = False,
    ) -> RenderOutput:
        """Render rays of one frame with gradients (training).

        ``cond`` is the frame's conditioning inputs; ``frame`` the field's per-frame inputs
        (default: ``cond``; training adds the frame's ``index``)."""
        frame = cond if frame is None else frame
        field_fn = functools.partial(self.field, cond=self.conditioning(cond), frame=frame)
        return render_rays(
            field_fn, rays_o, rays_d, background,
            bound=self.field.bound, sampler=self.sampler, occupancy=self.occupancy, perturb=perturb,
        )

    @torch.no_grad()
    def render_frame(self, frame: Mapping[str, Any]) -> RenderOutput:
        """Render every ray of a frame (``Frames`` item), chunked and compacted, without gradients."""
        return self.render_conditioned(frame, self.conditioning(frame["cond"]))

    @torch.no_grad()
    def render_conditioned(self, frame: Mapping[str, Any], cond: Conditioning) -> RenderOutput:
        """:meth:`render_frame` after the conditioning step (the speed profile times the two apart)."""
        field_fn = functools.partial(self.field, cond=cond, frame=frame["cond"])
        return render_chunked(
            field_fn, frame["rays_o"], frame["rays_d"], frame["background"], chunk=self.eval_chunk,
            bound=self.field.bound, sampler=self.sampler, occupancy=self.occupancy,
        )

    # -- training ----------------------------------------------------------------------------

    def on_fit_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "train_conditions"):
            conditions = [_to(c, self.device) for c in datamodule.train_conditions()]
            self.conditioning.prepare(conditions)
        split = getattr(datamodule, "train_split", None)
        if split is not None and not bool(self.occupancy.frustum_marked):
            self.occupancy.mark_unseen(split.poses, split.intrinsics, split.width, split.height)
            seen = self.occupancy.seen.float().mean().item()
            rank_zero_info(f"[talker] occupancy grid: {seen:.1%} of the cells are seen by a training camera")

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self.levels.apply(self.field.encoder, self.paper_step())
        self.conditioning.on_train_step(self.global_step)
        step = self.global_step
        if step >= self.occupancy_warmup and step % self.occupancy_update_every == 0:
            self.update_occupancy()

    @torch.no_grad()
    def update_occupancy(self) -> None:
        """Fold the next batch of a sweep over all training conditions into the occupancy grid.

        Under DDP each rank evaluates its share of the batch; ``synchronize`` takes the max."""
        conditions = self.trainer.datamodule.train_conditions()
        batch, end_of_sweep = self.sweep.next_batch(len(conditions))
        rank, world = self.global_rank, self.trainer.world_size
        mine = batch[rank::world]
        frames = [{**_to(conditions[i], self.device), "index": i} for i in mine]
        conds = [self.conditioning(frame) for frame in frames]
        def density_fn(x: Tensor) -> Tensor:
            return self.field.densities(x, conds, frames) if conds else x.new_zeros(x.shape[0])

        self.occupancy.update(density_fn, end_of_sweep=end_of_sweep)
        self.occupancy.synchronize()

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor | None:
        frame = {**batch["cond"], "index": batch["index"]}
        out = self.render(
            batch["rays_o"], batch["rays_d"], batch["background"], batch["cond"], frame=frame, perturb=True
        )
        if out.num_evaluated == 0:  # every sample fell in empty cells: nothing to learn from
            return None
        loss_rgb = mse(out.rgb, batch["rgb"])
        loss = loss_rgb + self.opacity_weight * opacity_entropy(out.opacity)
        reg = self.conditioning.regularization()
        if reg is not None:
            loss = loss + reg
            self.log("train/loss_conditioning", reg)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/loss_rgb", loss_rgb)
        self.log("train/psnr", -10 * torch.log10(loss_rgb.detach()), prog_bar=True)
        self.log("train/samples_per_ray", out.num_evaluated / batch["rays_o"].shape[0])
        self.log("train/occupancy", self.occupancy.occupancy_ratio)
        self.log("train/active_levels", self.field.encoder.level_mask.sum())
        return loss

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> dict[str, Tensor]:
        out = self.render_frame(batch)
        image = batch["image"]
        pred = out.rgb.view_as(image).clamp(0, 1)
        psnr = -10 * torch.log10(torch.mean((pred - image) ** 2))
        self.log("val/psnr", psnr, batch_size=1)
        return {"pred": pred, "depth": out.depth.view(image.shape[:2]), "opacity": out.opacity.view(image.shape[:2])}

    def configure_optimizers(self) -> dict[str, Any]:
        # Hash tables train with a larger rate and no weight decay (instant-NGP practice).
        encoders = [m.embeddings for m in self.modules() if isinstance(m, HashGrid)]
        encoder_ids = {id(p) for p in encoders}
        nets = [p for p in self.parameters() if id(p) not in encoder_ids]
        optimizer = torch.optim.AdamW(
            [
                # Named groups: LearningRateMonitor logs them as lr-AdamW/encoder and lr-AdamW/net.
                {"name": "encoder", "params": encoders, "lr": self.lr_encoder, "weight_decay": 0.0},
                {"name": "net", "params": nets, "lr": self.lr_net, "weight_decay": self.weight_decay},
            ],
            betas=(0.9, 0.99),
            eps=1e-15,
        )
        milestones = [max(1, round(m * self.schedule_scale)) for m in self.lr_milestones]
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def _to(tree: Mapping[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    return {k: v.to(device) for k, v in tree.items()}
