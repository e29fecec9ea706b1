"""The talking-head model: a conditioned field, its conditioning strategy and the renderer's state.

:class:`TalkingHead` is a plain ``nn.Module`` that knows how to render a frame and which of its
parameters are hash tables; training (stages, optimiser, Lightning) lives in ``talker.stages`` and
``talker.modules``. Rendering inputs are the frame dictionaries of ``talker.data`` (``Frames`` items:
``rays_o``, ``rays_d``, ``background``, ``cond``, ...).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from talker.conditioning.base import Conditioning, ConditioningStrategy
from talker.encoders.hashgrid import hash_grids
from talker.fields.base import Field
from talker.fields.torso import TorsoField, composite_torso, pixel_coords
from talker.rendering import ConditionSweep, OccupancyGrid, RayMarcher, RayNoise, RaySampler, RenderOutput
from talker.rendering import render_chunked, render_rays
from talker.schedules.levels import LevelSchedule


class TalkingHead(nn.Module):
    """Field + conditioning strategy + occupancy grid (+ the torso field, built for a torso stage).

    Args:
        field: factory ``(cond_spec=...) -> Field`` (a Hydra partial).
        conditioning: the conditioning strategy; bound to the field's hidden widths here.
        levels: hash-level schedule of the field's positional encoder.
        occupancy: factory of the occupancy grid over the field's box.
        sampler: where rays are sampled (default: a ``RayMarcher`` over the occupancy grid).
        torso: factory of RAD-NeRF's 2D torso field (a Hydra partial), built by :meth:`build_torso`
            when the plan has a torso stage.
        occupancy_update_every: steps between occupancy-grid updates.
        occupancy_warmup: step of the first update (until then every cell the training cameras see
            counts as occupied).
        occupancy_conditions: training conditions per update; every training condition is visited
            once per sweep of updates (see ``talker.rendering.occupancy``).
        eval_chunk: rays per chunk when rendering whole frames.
    """

    def __init__(
        self,
        field: Callable[..., Field],
        conditioning: ConditioningStrategy,
        levels: LevelSchedule,
        occupancy: Callable[..., OccupancyGrid],
        sampler: RaySampler | None = None,
        torso: Callable[[], TorsoField] | None = None,
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
        self.occupancy_update_every, self.occupancy_warmup = occupancy_update_every, occupancy_warmup
        self.eval_chunk = eval_chunk
        self.torso_factory = torso
        self.torso: TorsoField | None = None  # built for a torso stage (talker.stages.TorsoStage)
        # Whether the torso stage has run: frames are then rendered over the learned torso.
        self.register_buffer("torso_trained", torch.tensor(False))

    @property
    def device(self) -> torch.device:
        return self.torso_trained.device

    @property
    def drives_eyes(self) -> bool:
        """Whether a part of this head (its strategy, a field's frame input) reads the frame's eye ratio
        (``talker.fields.inputs.eye_ratio``): then ``cond["eye"]`` replaces it for all of them."""
        return any(getattr(module, "drives_eyes", False) for module in self.modules() if module is not self)

    def build_torso(self) -> TorsoField:
        """Build the torso field (once; a torso stage trains it)."""
        if self.torso is None:
            if self.torso_factory is None:
                raise ValueError("the schedule has a torso stage (schedule.torso_steps > 0) but model.head.torso is null")
            self.torso = self.torso_factory()
        return self.torso

    # -- conditioning and rendering -----------------------------------------------------------

    def condition(self, inputs: Mapping[str, Tensor]) -> Conditioning:
        """The strategy's conditioning of a frame's inputs (``frame["cond"]``)."""
        return self.conditioning(inputs)

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
        """Render every ray of a frame, chunked and compacted, without gradients."""
        return self.render_conditioned(frame, self.condition(frame["cond"]))

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

    # -- training services --------------------------------------------------------------------

    def prepare(self, conditions: Sequence[Mapping[str, Tensor]]) -> None:
        """Data-dependent set-up from every training frame's inputs (the strategy's statistics)."""
        self.conditioning.prepare([_to(c, self.device) for c in conditions])

    def on_train_step(self, paper_step: float) -> None:
        """Step-driven state: the active hash levels and the strategy's annealing."""
        self.levels.apply(self.field.encoder, paper_step)
        self.conditioning.on_train_step(paper_step)

    def occupancy_due(self, step: int) -> bool:
        """Whether training step ``step`` updates the occupancy grid."""
        return step >= self.occupancy_warmup and step % self.occupancy_update_every == 0

    @torch.no_grad()
    def update_occupancy(self, conditions: Sequence[Mapping[str, Tensor]], rank: int = 0, world: int = 1) -> None:
        """Fold the next batch of a sweep over all training ``conditions`` into the occupancy grid.

        With ``world`` processes each evaluates its share of the batch; ``synchronize`` takes the max."""
        batch, end_of_sweep = self.sweep.next_batch(len(conditions))
        mine = batch[rank::world]
        frames = [{**_to(conditions[i], self.device), "index": i} for i in mine]
        conds = [self.conditioning(frame) for frame in frames]

        def density_fn(x: Tensor) -> Tensor:
            return self.field.densities(x, conds, frames) if conds else x.new_zeros(x.shape[0])

        self.occupancy.update(density_fn, end_of_sweep=end_of_sweep)
        self.occupancy.synchronize()

    def param_groups(
        self, lr_encoder: float, lr_net: float, weight_decay: float, weight_decay_encoder: float = 0.0
    ) -> list[dict[str, Any]]:
        """Optimiser groups: hash tables (``encoder``), everything else (``net``) and the groups the
        strategy asks for its own networks (``ConditioningStrategy.param_groups``: e.g. ``conditioning``
        at its own rate, ``attention`` at RAD-NeRF's 5x)."""
        # Hash tables train with a larger rate and no weight decay (instant-NGP practice).
        encoders = [grid.embeddings for grid in hash_grids(self)]
        encoder_ids = {id(p) for p in encoders}
        own = self.conditioning.param_groups(lr_net, weight_decay, encoder_ids)
        taken = encoder_ids | {id(p) for group in own for p in group["params"]}
        nets = [p for p in self.parameters() if id(p) not in taken]
        # Named groups: LearningRateMonitor logs them as lr-<Optimizer>/encoder, .../net, ...
        return [
            {"name": "encoder", "params": encoders, "lr": lr_encoder, "weight_decay": weight_decay_encoder},
            {"name": "net", "params": nets, "lr": lr_net, "weight_decay": weight_decay},
            *own,
        ]


def _to(tree: Mapping[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    return {k: v.to(device) for k, v in tree.items()}
