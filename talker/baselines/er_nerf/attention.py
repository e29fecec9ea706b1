"""ER-NeRF's audio-spatial region attention (Sec. 3.2), as a conditioning fusion."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from talker.conditioning.base import Conditioning, Fusion, RenderedRays
from talker.conditioning.penalty import rendered_ray_sum
from talker.nn.mlp import MLP

# The per-point value under which the attention's norm comes back from the render.
ATTENTION = "audio_attention"


class RegionAttention(Fusion):
    """The audio code ``h_cond [C]`` enters each point reweighted channel by channel by its region.

    ``spatial(x, pos) = h_cond * gate(pos)``: ``gate`` is an MLP of the point's positional (tri-plane)
    features with ``C`` outputs, so each region of the face picks the audio channels that move it;
    the ``[N, C]`` result joins the field input. As in ER-NeRF the gate is not squashed (a plain
    linear output), its MLP has no biases and keeps PyTorch's default initialisation: with a fresh
    tri-plane (features of about 1e-4) it starts at about 0, and so does the audio it lets through,
    until the grid's features grow (docs/audio_driven_baselines.md: the measured learning curve).

    ``regularization(rays)`` is ER-NeRF's attention loss: per ray, the unweighted sum of the gate's
    L2 norm over the marched samples (:func:`~talker.conditioning.penalty.ray_sum_penalty`), averaged
    over the rays, those of the ``exempt`` region counting as zero, times ``weight`` ramped in over
    ``ramp_steps`` paper steps.

    Args:
        hidden_dim, num_layers: the gate MLP (ER-NeRF: 64, 2).
        weight: weight of the attention loss (ER-NeRF's ``--lambda_amb``: 1e-4); 0: none.
        ramp_steps: paper steps of its linear ramp (ER-NeRF: its whole schedule).
        exempt: the ray-batch region flag left free (``talker.data.landmarks.RAY_REGIONS``; ER-NeRF:
            ``landmark_extent``, the landmarks' bounding box).
    """

    def __init__(
        self, hidden_dim: int = 64, num_layers: int = 2, weight: float = 0.0, ramp_steps: float = 240_000,
        exempt: str = "landmark_extent",
    ) -> None:
        super().__init__()
        self.hidden_dim, self.num_layers = hidden_dim, num_layers
        self.weight, self.ramp_steps, self.exempt = weight, ramp_steps, exempt
        self.gate: MLP | None = None
        self._ramp = 1.0

    def vector_dim(self, cond_dim: int) -> int:
        return 0

    def spatial_dim(self, cond_dim: int) -> int:
        return cond_dim

    def build(self, cond_dim: int, modulation_widths: Sequence[int], position_dim: int = 0) -> None:
        if position_dim <= 0:
            raise ValueError(
                "RegionAttention reads the field's positional features: bind it with position_dim > 0"
            )
        self.gate = MLP(position_dim, cond_dim, self.hidden_dim, self.num_layers, bias=False)

    def attention(self, pos: Tensor) -> Tensor:
        """``[N, P] -> [N, C]``: the per-point channel weights."""
        assert self.gate is not None, "RegionAttention.build was not called"
        return self.gate(pos)

    def forward(self, h_cond: Tensor) -> Conditioning:
        def spatial(x: Tensor, pos: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
            gate = self.attention(pos)
            return h_cond.to(pos.dtype) * gate, {ATTENTION: gate.norm(dim=-1)}

        return Conditioning(spatial=spatial)

    def on_train_step(self, paper_step: float) -> None:
        self._ramp = min(paper_step / self.ramp_steps, 1.0) if self.ramp_steps > 0 else 1.0

    def regularization(self, rays: RenderedRays) -> Tensor | None:
        if ATTENTION not in rays.values or self.weight == 0:
            return None
        return self.weight * self._ramp * rendered_ray_sum(rays, rays.points(ATTENTION), self.exempt)
