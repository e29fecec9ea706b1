"""The one LightningModule that trains a talking head, whatever its conditioning strategy or system.

Training runs the paper's three stages in one fit; their boundaries are schedule steps (paper
steps times ``schedule.scale``), so a shortened run keeps the schedule's shape:

====== =========================================== =============================================
stage  paper steps (R2-Talker)                      what is trained
====== =========================================== =============================================
head   0 .. lips_start                              head field + strategy; photometric loss (MSE)
                                                    + opacity entropy; lr x0.1 at 150K, x0.01 at 180K
lips   lips_start (200K) .. head_steps (240K)       lr reset; every ``lip_patch_every``-th step (2)
                                                    renders a lip patch: MSE + ``lpips_weight`` x
                                                    LPIPS (AlexNet); the other steps MSE
torso  head_steps .. head_steps + torso_steps       head frozen; RAD-NeRF's 2D torso field under it
====== =========================================== =============================================

Systems other than R2-Talker (``configs/system``) inject their own parts instead of branching
here: the optimiser, the learning-rate schedule (``talker.schedules.lr``), the head-stage
photometric loss (``talker.losses.photometric``), the field and the torso field.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from talker.conditioning.base import Conditioning, ConditioningStrategy, RenderedPoints
from talker.encoders.hashgrid import HashGrid
from talker.fields.base import Field
from talker.fields.torso import TorsoField, composite_torso, pixel_coords
from talker.losses import MSE, LPIPSLoss, PhotometricLoss, lpips_weights_file, mse, opacity_entropy
from talker.rendering import (
    ConditionSweep,
    OccupancyGrid,
    RayMarcher,
    RayNoise,
    RaySampler,
    RenderOutput,
    render_chunked,
    render_rays,
)
from talker.schedules.levels import LevelSchedule
from talker.schedules.lr import LRSchedule, StagePlan, StepDecay


# LPIPS' AlexNet pools a smaller patch down to nothing.
MIN_LPIPS_PATCH = 32


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
        lr_schedule: learning-rate multiplier per step (``talker.schedules.lr``); None: R2-Talker's
            ``StepDecay(lr_milestones)``.
        optimizer: factory ``(param_groups) -> Optimizer`` (a Hydra partial); None: R2-Talker's
            AdamW with instant-NGP's betas (0.9, 0.99) and eps 1e-15.
        lr_encoder, lr_net: learning rates of hash tables and of everything else.
        weight_decay: weight decay of everything but the hash tables.
        weight_decay_encoder: weight decay of the hash tables (instant-NGP practice: none).
        photometric: the head stage's colour loss; None: :class:`~talker.losses.MSE`. The lips stage
            uses MSE (+ LPIPS on the patch) whatever this is, as R2-Talker's fairness note asks.
        opacity_weight: weight of the opacity entropy regulariser.
        occupancy_update_every: steps between occupancy-grid updates.
        occupancy_warmup: step of the first update (until then every cell the training cameras
            see counts as occupied).
        occupancy_conditions: training conditions per update; every training condition is
            visited once per sweep of updates (see ``talker.rendering.occupancy``).
        eval_chunk: rays per chunk when rendering whole frames.
        head_steps: paper steps of the head and lips stages together (240K).
        lips_start: paper step where lips fine-tuning starts (200K); None: no lips stage.
        lpips_weight: weight of LPIPS on the lip patch (0.01).
        lip_patch_every: in the lips stage every ``lip_patch_every``-th step renders the lip patch
            (R2-Talker and ER-NeRF alternate with whole-frame steps: 2; RAD-NeRF: every step, 1).
        lpips_weights: the AlexNet file of LPIPS; None: ``$TORCH_HOME/hub/checkpoints``, downloaded
            there when a fit that will reach the lips stage starts (offline, that fit fails at its
            start naming the file).
        torso: factory of the torso field (a Hydra partial); trained after the head when
            ``torso_steps > 0``.
        torso_steps: paper steps of the torso stage (0: none).
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
        lr_schedule: LRSchedule | None = None,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        lr_encoder: float = 1e-2,
        lr_net: float = 1e-3,
        weight_decay: float = 1e-2,
        weight_decay_encoder: float = 0.0,
        photometric: PhotometricLoss | None = None,
        opacity_weight: float = 1e-4,
        occupancy_update_every: int = 16,
        occupancy_warmup: int = 64,
        occupancy_conditions: int = 8,
        eval_chunk: int = 32768,
        head_steps: int = 240_000,
        lips_start: int | None = 200_000,
        lpips_weight: float = 0.01,
        lpips_weights: str | None = None,
        lip_patch_every: int = 2,
        torso: Callable[..., TorsoField] | None = None,
        torso_steps: int = 0,
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
        self.lr_schedule = lr_schedule if lr_schedule is not None else StepDecay(lr_milestones)
        self.optimizer_factory = optimizer if optimizer is not None else functools.partial(
            torch.optim.AdamW, betas=(0.9, 0.99), eps=1e-15
        )
        self.lr_encoder, self.lr_net = lr_encoder, lr_net
        self.weight_decay, self.weight_decay_encoder = weight_decay, weight_decay_encoder
        self.photometric = photometric if photometric is not None else MSE()
        self.opacity_weight = opacity_weight
        self.occupancy_update_every = occupancy_update_every
        self.occupancy_warmup = occupancy_warmup
        self.eval_chunk = eval_chunk
        self.head_steps, self.lips_start, self.torso_steps = head_steps, lips_start, torso_steps
        self.lpips_weight, self.lpips_weights = lpips_weight, lpips_weights
        if lip_patch_every < 1:
            raise ValueError(f"model.lip_patch_every={lip_patch_every}: must be at least 1")
        self.lip_patch_every = lip_patch_every
        self._lpips: LPIPSLoss | None = None  # frozen, kept out of the state dict (see perceptual)
        self.torso = torso() if torso is not None and torso_steps > 0 else None
        # Whether the torso stage has run: evaluation then renders the learned torso under the head.
        self.register_buffer("torso_trained", torch.tensor(False))

    # -- rendering ---------------------------------------------------------------------------

    def paper_step(self, step: int | None = None) -> float:
        """The paper's step count that ``step`` (default: the global step) corresponds to."""
        return (self.global_step if step is None else step) / self.schedule_scale

    def stage(self, step: int | None = None) -> str:
        """``"head"``, ``"lips"`` or ``"torso"`` at ``step`` (default: the global step)."""
        return self.plan.stage(self.global_step if step is None else step)

    @property
    def plan(self) -> StagePlan:
        """The stage boundaries (paper steps) and the schedule scale; no torso stage without a torso field."""
        torso_steps = self.torso_steps if self.torso is not None else 0
        return StagePlan(self.head_steps, self.lips_start, torso_steps, self.schedule_scale)

    def lr_factor(self, step: int) -> float:
        """Learning-rate multiplier at ``step`` (the injected ``lr_schedule`` at that step's stage)."""
        return self.lr_schedule.factor(step, self.stage(step), self.plan)

    def render(
        self,
        rays_o: Tensor,
        rays_d: Tensor,
        background: Tensor,
        cond: Mapping[str, Tensor],
        *,
        frame: Mapping[str, Any] | None = None,
        perturb: bool = False,
        noise: RayNoise | None = None,
    ) -> RenderOutput:
        """Render rays of one frame with gradients (training).

        ``cond`` is the frame's conditioning inputs; ``frame`` the field's per-frame inputs
        (default: ``cond``; training adds the frame's ``index``); ``noise`` the jitter's source."""
        frame = cond if frame is None else frame
        field_fn = functools.partial(self.field, cond=self.conditioning(cond), frame=frame)
        return render_rays(
            field_fn, rays_o, rays_d, background,
            bound=self.field.bound, sampler=self.sampler, occupancy=self.occupancy, perturb=perturb, noise=noise,
        )

    @torch.no_grad()
    def render_frame(self, frame: Mapping[str, Any]) -> RenderOutput:
        """Render every ray of a frame (``Frames`` item), chunked and compacted, without gradients."""
        return self.render_conditioned(frame, self.conditioning(frame["cond"]))

    @torch.no_grad()
    def render_conditioned(self, frame: Mapping[str, Any], cond: Conditioning) -> RenderOutput:
        """:meth:`render_frame` after the conditioning step (the speed profile times the two apart).

        Once the torso stage has run, the head is rendered over the learned torso and ``bc``
        instead of the ground-truth torso in ``background``."""
        field_fn = functools.partial(self.field, cond=cond, frame=frame["cond"])
        background = frame["background"]
        if self.torso is not None and bool(self.torso_trained) and "bc" in frame:
            height, width = frame["image"].shape[:2]
            background = self.torso_background(frame["pixels"], width, height, frame["pose"], frame["bc"])
        return render_chunked(
            field_fn, frame["rays_o"], frame["rays_d"], background, chunk=self.eval_chunk,
            bound=self.field.bound, sampler=self.sampler, occupancy=self.occupancy,
        )

    def torso_background(self, pixels: Tensor, width: int, height: int, pose: Tensor, bc: Tensor) -> Tensor:
        """``[R, 3]``: the torso field over the clean background, what the head is rendered over."""
        assert self.torso is not None
        coords = pixel_coords(pixels.to(self.device), width, height)
        return composite_torso(self.torso(coords, pose), bc)

    # -- training ----------------------------------------------------------------------------

    def on_fit_start(self) -> None:
        if self.lips_start is not None and self.plan.real(self.lips_start) < self.trainer.max_steps:
            lpips_weights_file(self.lpips_weights)  # download or fail now, not hours later at the lips stage
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
        self.conditioning.on_train_step(self.paper_step())
        step, stage = self.global_step, self.stage()
        if stage == "lips" and self._lpips is None:
            self.__dict__["_lpips"] = LPIPSLoss(self.lpips_weights).to(self.device)  # not a submodule
        if stage == "torso":
            self.torso_trained.fill_(True)
        elif step >= self.occupancy_warmup and step % self.occupancy_update_every == 0:
            self.update_occupancy()  # the head is frozen in the torso stage

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
        stage = self.stage()
        self.log("train/stage", float(("head", "lips", "torso").index(stage)))
        if stage == "torso":
            return self.torso_step(batch)
        if stage == "lips" and (self.global_step + 1) % self.lip_patch_every == 0 and "patch" in batch:
            return self.lips_step(batch)
        return self.photometric_step(batch, batch)

    def photometric_step(self, rays: Mapping[str, Tensor], batch: Mapping[str, Any], lpips: bool = False) -> Tensor | None:
        """The photometric loss of ``rays`` of the batch's frame: the injected one in the head stage,
        MSE in the lips stage (+ LPIPS on a square patch when ``lpips``)."""
        frame = {**batch["cond"], "index": batch["index"]}
        out = self.render(
            rays["rays_o"], rays["rays_d"], rays["background"], batch["cond"], frame=frame, perturb=True,
            noise=rays.get("ray_noise"),
        )
        if out.num_evaluated == 0:  # every sample fell in empty cells: nothing to learn from
            if self.trainer.world_size == 1:
                return None
            # Under DDP every rank must reduce a gradient for every parameter: this one adds zeros.
            return sum(p.sum() for p in self.parameters() if p.requires_grad) * 0.0
        loss_rgb = mse(out.rgb, rays["rgb"])
        if not torch.isfinite(loss_rgb):
            # Fail here, naming the cause: a NaN field empties the occupancy grid and fails far from it.
            raise FloatingPointError(
                f"training diverged at step {self.global_step}: the photometric loss is {loss_rgb.item()} "
                f"(lower model.lr_net={self.lr_net} or model.lr_encoder={self.lr_encoder}); "
                "checkpoints so far are kept"
            )
        if self.stage() == "head":
            progress = min(1.0, self.global_step / self.plan.head_stage_end)
            loss_photometric = self.photometric(out, rays["rgb"], progress)
            for name, term in self.photometric.terms.items():
                self.log(f"train/loss_{name}", term)
        else:
            loss_photometric = loss_rgb
        loss = loss_photometric + self.opacity_weight * opacity_entropy(out.opacity)
        if lpips:
            assert self._lpips is not None
            side = math.isqrt(out.rgb.shape[0])
            if side < MIN_LPIPS_PATCH:
                raise ValueError(f"data.lip_patch={side}: LPIPS' AlexNet needs a patch of at least {MIN_LPIPS_PATCH} pixels")
            as_image = lambda x: x.view(1, side, side, 3).permute(0, 3, 1, 2)  # noqa: E731
            loss_lpips = self._lpips(as_image(out.rgb), as_image(rays["rgb"]))
            loss = loss + self.lpips_weight * loss_lpips
            self.log("train/loss_lpips", loss_lpips)
            self.log("train/psnr_lips", -10 * torch.log10(loss_rgb.detach()))
            return loss
        reg = self.conditioning.regularization(rendered_points(out, rays["face"]))
        if reg is not None:
            loss = loss + reg
            self.log("train/loss_conditioning", reg)
        # Mean over DDP ranks (each holds an equal share of the rays): the whole batch's loss.
        self.log("train/loss", loss, prog_bar=True, sync_dist=True)
        self.log("train/loss_rgb", loss_rgb, sync_dist=True)
        self.log("train/psnr", -10 * torch.log10(loss_rgb.detach()), prog_bar=True)
        self.log("train/rays", float(batch["rays_o"].shape[0]))  # this process's share under DDP
        self.log("train/samples_per_ray", out.num_evaluated / batch["rays_o"].shape[0])
        self.log("train/occupancy", self.occupancy.occupancy_ratio)
        self.log("train/active_levels", self.field.encoder.level_mask.sum())
        return loss

    def lips_step(self, batch: Mapping[str, Any]) -> Tensor | None:
        """Lips fine-tuning: the lip patch of the frame, MSE + ``lpips_weight`` x LPIPS."""
        return self.photometric_step(batch["patch"], batch, lpips=True)

    def torso_step(self, batch: Mapping[str, Any]) -> Tensor:
        """Torso stage: the frozen head over the torso field over ``bc`` must give the frame."""
        assert self.torso is not None
        frame = {**batch["cond"], "index": batch["index"]}
        with torch.no_grad():  # the head is frozen: rendered over black, composited below
            head = self.render(
                batch["rays_o"], batch["rays_d"], torch.zeros_like(batch["bc"]), batch["cond"], frame=frame
            )
        width, height = (int(v) for v in batch["size"])
        background = self.torso_background(batch["pixels"], width, height, batch["pose"], batch["bc"])
        pred = head.rgb + (1 - head.opacity).unsqueeze(-1) * background
        loss = mse(pred, batch["rgb"])
        self.log("train/loss", loss, prog_bar=True, sync_dist=True)
        self.log("train/loss_torso", loss, sync_dist=True)
        self.log("train/psnr", -10 * torch.log10(loss.detach()), prog_bar=True)
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
        # A strategy with a learning rate of its own gets its networks in a group of their own.
        own_lr = self.conditioning.lr is not None
        conditioning = [p for p in self.conditioning.parameters() if id(p) not in encoder_ids] if own_lr else []
        taken = encoder_ids | {id(p) for p in conditioning}
        nets = [p for p in self.parameters() if id(p) not in taken]
        # Named groups: LearningRateMonitor logs them as lr-<Optimizer>/encoder, .../net (, .../conditioning).
        groups = [
            {"name": "encoder", "params": encoders, "lr": self.lr_encoder, "weight_decay": self.weight_decay_encoder},
            {"name": "net", "params": nets, "lr": self.lr_net, "weight_decay": self.weight_decay},
        ]
        if own_lr:
            groups.append({
                "name": "conditioning", "params": conditioning, "lr": self.conditioning.lr,
                "weight_decay": self.weight_decay,
            })
        optimizer = self.optimizer_factory(groups)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: self.lr_factor(step))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def rendered_points(out: RenderOutput, in_face: Tensor) -> RenderedPoints:
    """The evaluated points of a render (in evaluation order) with their weights and face flags.

    ``in_face [R]``: whether each ray's pixel lies in the face box."""
    assert out.samples is not None and out.weights is not None, "needs a render_rays output"
    rows, _ = out.samples.mask.nonzero(as_tuple=True)
    weights = out.weights[out.samples.mask]
    return RenderedPoints(weights=weights, in_face=in_face[rows], num_rays=out.rgb.shape[0])


def _to(tree: Mapping[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    return {k: v.to(device) for k, v in tree.items()}
