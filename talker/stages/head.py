"""The head stage (photometric loss on whole-frame ray batches) and the lips stage that fine-tunes it."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from talker.conditioning.base import RenderedRays
from talker.data.datamodule import RAY_KEYS
from talker.data.landmarks import RAY_REGIONS
from talker.head.model import TalkingHead
from talker.losses import MSE, LPIPSLoss, PhotometricLoss, lpips_weights_file, mse, opacity_entropy
from talker.rendering import RenderOutput
from talker.schedules.lr import Constant, LRSchedule, StepDecay
from talker.schedules.plan import StagePlan
from talker.stages.base import Diverged, Stage, StepContext

# LPIPS' AlexNet pools a smaller patch down to nothing.
MIN_LPIPS_PATCH = 32


class HeadStage(Stage):
    """The head stage: the injected photometric loss + ``opacity_weight`` x opacity entropy + the
    strategy's regulariser, on each step's ray batch of one frame.

    Args:
        lr: learning-rate shape; None: R2-Talker's step decay (x0.1 per milestone of ``lr_milestones``).
        lr_milestones: paper steps of R2-Talker's decay (150K, 180K).
        photometric: the colour loss; None: :class:`~talker.losses.MSE` (ER-NeRF: its
            uncertainty-weighted MSE).
        opacity_weight: weight of the opacity entropy.
    """

    name = "head"

    def __init__(
        self,
        lr: LRSchedule | None = None,
        lr_milestones: Sequence[int] = (150_000, 180_000),
        photometric: PhotometricLoss | None = None,
        opacity_weight: float = 1e-4,
    ) -> None:
        super().__init__(lr if lr is not None else StepDecay(lr_milestones))
        self.photometric = photometric if photometric is not None else MSE()
        self.opacity_weight = opacity_weight

    def frozen(self, head: TalkingHead) -> list[nn.Module]:
        return [head.torso] if head.torso is not None else []

    def colour_loss(self, out: RenderOutput, rays: Mapping[str, Any], loss_rgb: Tensor, ctx: StepContext) -> Tensor:
        """The injected photometric loss of the ray batch ``rays``, phased by the share of the head stage
        done; it sees the batch's region flags (LokiTalk weights the eyes and mouth up)."""
        progress = min(1.0, ctx.step / ctx.plan.head_stage_end)
        regions = {name: rays[name] for name in RAY_REGIONS if name in rays}
        loss = self.photometric(out, rays["rgb"], progress, regions=regions)
        for name, term in self.photometric.terms.items():
            ctx.log(f"train/loss_{name}", term)
        return loss

    def training_step(self, head: TalkingHead, batch: Mapping[str, Any], ctx: StepContext) -> Tensor | None:
        return self.frame_step(head, batch, ctx)

    def render_loss(
        self, head: TalkingHead, rays: Mapping[str, Any], batch: Mapping[str, Any], ctx: StepContext,
        colour: Callable[[RenderOutput, Mapping[str, Any], Tensor, StepContext], Tensor],
    ) -> tuple[Tensor, Tensor, RenderOutput] | None:
        """Render ``rays`` of the batch's frame: ``(colour loss + opacity entropy, MSE, render)``, or None
        when every sample fell in empty cells (nothing to learn from)."""
        frame = {**batch["cond"], "index": batch["index"]}
        out = head.render(
            rays["rays_o"], rays["rays_d"], rays["background"], batch["cond"], frame=frame, perturb=True,
            noise=rays.get("ray_noise"),
        )
        if out.num_evaluated == 0:
            return None
        loss_rgb = mse(out.rgb, rays["rgb"])
        if not torch.isfinite(loss_rgb):
            # Fail here, naming the cause: a NaN field empties the occupancy grid and fails far from it.
            raise Diverged(ctx.step, loss_rgb.item())
        loss = colour(out, rays, loss_rgb, ctx) + self.opacity_weight * opacity_entropy(out.opacity)
        return loss, loss_rgb, out

    def frame_step(self, head: TalkingHead, batch: Mapping[str, Any], ctx: StepContext) -> Tensor | None:
        """A whole-frame ray batch: colour loss, opacity entropy and the strategy's regulariser."""
        rendered = self.render_loss(head, batch, batch, ctx, self.colour_loss)
        if rendered is None:
            return None
        loss, loss_rgb, out = rendered
        reg = head.conditioning.regularization(rendered_rays(out, batch))
        if reg is not None:
            loss = loss + reg
            ctx.log("train/loss_conditioning", reg)
        # Mean over DDP ranks (each holds an equal share of the rays): the whole batch's loss.
        ctx.log("train/loss", loss, prog_bar=True, sync_dist=True)
        ctx.log("train/loss_rgb", loss_rgb, sync_dist=True)
        ctx.log("train/psnr", -10 * torch.log10(loss_rgb.detach()), prog_bar=True)
        ctx.log("train/rays", float(batch["rays_o"].shape[0]))  # this process's share under DDP
        ctx.log("train/samples_per_ray", out.num_evaluated / batch["rays_o"].shape[0])
        ctx.log("train/occupancy", head.occupancy.occupancy_ratio)
        ctx.log("train/active_levels", head.field.encoder.level_mask.sum())
        return loss


class LipsStage(HeadStage):
    """Lips fine-tuning (R2-Talker Sec. 3.4): the learning rate starts over; every ``patch_every``-th
    step renders the batch's patch (``data.patch_region``: R2-Talker's around the lips) with the colour
    loss + ``lpips_weight`` x LPIPS, the other steps the whole-frame batch with the colour loss: MSE
    unless ``photometric`` is given (whatever the head stage's: R2-Talker's fairness note).

    Args:
        lr: learning-rate shape; None: the initial rates (R2-Talker resets them).
        photometric: the colour loss; None: MSE. LokiTalk's last 20 % keeps its region-weighted MSE.
        opacity_weight: weight of the opacity entropy (the head stage's).
        lpips_weight: weight of LPIPS on the lip patch (R2-Talker eq. 12: 0.01).
        lpips_weights: the AlexNet file of LPIPS; None: ``$TORCH_HOME/hub/checkpoints``. A fit that
            will reach this stage fails at its start when the file is missing.
        patch_every: every ``patch_every``-th step renders the lip patch (R2-Talker and ER-NeRF
            alternate with whole-frame steps: 2; RAD-NeRF: every step, 1).
    """

    name = "lips"

    def __init__(
        self,
        lr: LRSchedule | None = None,
        photometric: PhotometricLoss | None = None,
        opacity_weight: float = 1e-4,
        lpips_weight: float = 0.01,
        lpips_weights: str | None = None,
        patch_every: int = 2,
    ) -> None:
        super().__init__(lr if lr is not None else Constant(), photometric=photometric, opacity_weight=opacity_weight)
        if patch_every < 1:
            raise ValueError(f"model.stages.lips.patch_every={patch_every}: must be at least 1")
        self.lpips_weight, self.lpips_weights, self.patch_every = lpips_weight, lpips_weights, patch_every
        self._lpips: LPIPSLoss | None = None  # frozen, loaded when the stage begins, never saved

    def check(self, plan: StagePlan, max_steps: int) -> None:
        if plan.lips_begin is not None and plan.real(plan.lips_begin) < max_steps:
            lpips_weights_file(self.lpips_weights)

    def on_step_start(self, head: TalkingHead, step: int) -> None:
        if self._lpips is None:
            self._lpips = LPIPSLoss(self.lpips_weights).to(head.device)

    def training_step(self, head: TalkingHead, batch: Mapping[str, Any], ctx: StepContext) -> Tensor | None:
        if (ctx.step + 1) % self.patch_every == 0 and "patch" in batch:
            return self.patch_step(head, batch, ctx)
        return self.frame_step(head, batch, ctx)

    def patch_step(self, head: TalkingHead, batch: Mapping[str, Any], ctx: StepContext) -> Tensor | None:
        """The frame's patch: colour loss + opacity entropy + ``lpips_weight`` x LPIPS."""
        rendered = self.render_loss(head, batch["patch"], batch, ctx, self.colour_loss)
        if rendered is None:
            return None
        loss, loss_rgb, out = rendered
        assert self._lpips is not None
        side = math.isqrt(out.rgb.shape[0])
        if side < MIN_LPIPS_PATCH:
            raise ValueError(f"data.lip_patch={side}: LPIPS' AlexNet needs a patch of at least {MIN_LPIPS_PATCH} pixels")
        as_image = lambda x: x.view(1, side, side, 3).permute(0, 3, 1, 2)  # noqa: E731
        loss_lpips = self._lpips(as_image(out.rgb), as_image(batch["patch"]["rgb"]))
        loss = loss + self.lpips_weight * loss_lpips
        ctx.log("train/loss_lpips", loss_lpips)
        ctx.log("train/psnr_lips", -10 * torch.log10(loss_rgb.detach()))
        return loss


def rendered_rays(out: RenderOutput, rays: Mapping[str, Any]) -> RenderedRays:
    """What a regulariser may read of a training render of ``rays`` (a ray batch): per-sample values,
    weights and transmittance, and the batch's per-ray values (``face``, ...)."""
    assert out.samples is not None and out.weights is not None and out.transmittance is not None, (
        "needs a render_rays output"
    )
    per_ray = {key: rays[key] for key in RAY_KEYS if key in rays}
    return RenderedRays(out.samples.mask, out.weights, out.transmittance, out.point_values, per_ray)
