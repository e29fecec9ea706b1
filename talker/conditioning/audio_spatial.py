"""RAD-NeRF's audio conditioning (Tang et al. 2022, Sec. 3.2): audio code + audio-spatial decomposition.

The audio feature windows of 8 neighbouring frames go through AudioNet (a :class:`WindowNet`) and
are smoothed by attention into one audio code ``a`` (:class:`AudioCode`, which ER-NeRF shares).
Instead of entering the sigma net directly, ``a`` moves each point to *ambient* coordinates: an MLP
maps ``[pos_enc(x), a]`` to a point in ``[-1, 1]^2``, which is looked up in a 2D hash grid; its
features join the positional features. The ambient regulariser pulls the ambient coordinates of what
is rendered outside the face towards 0: the audio may move the face, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor

from talker.conditioning.base import Conditioning, ConditioningStrategy, Fusion, RenderedRays
from talker.conditioning.temporal import AttentionSmoothing, WindowNet
from talker.encoders.hashgrid import HashGrid
from talker.nn.mlp import MLP


# The per-point value under which the ambient coordinates come back from the render.
AMBIENT = "ambient"


class AmbientFusion(Fusion):
    """``h_cond -> Conditioning(spatial=...)``: the audio-spatial decomposition.

    ``spatial(x, pos) = grid(tanh(MLP([pos, h_cond])))`` per point; the ambient coordinates go
    with the features as the point value ``"ambient"``. ``regularization(rays)`` is RAD-NeRF's
    ambient loss: per ray, ``sum_i w_i |ambient_i|_1`` over its points, averaged over the rays
    outside the face box (inside, the audio must be free to move the mouth), times a weight that
    grows linearly from 0 to ``weight`` over the first ``ramp_steps`` paper steps.

    Args:
        grid: the ambient hash grid; its ``input_dim`` is the ambient dimension (RAD-NeRF: 2).
        hidden_dim, num_layers: the ambient MLP (RAD-NeRF: 64, 3).
        weight: regulariser weight (RAD-NeRF's ``--lambda_amb``: 0.1, the YAML's value).
        ramp_steps: paper steps of the weight's linear ramp (RAD-NeRF: its whole schedule).
    """

    def __init__(
        self, grid: HashGrid, hidden_dim: int = 64, num_layers: int = 3, weight: float = 1e-4,
        ramp_steps: float = 240_000,
    ) -> None:
        super().__init__()
        self.grid, self.hidden_dim, self.num_layers, self.weight = grid, hidden_dim, num_layers, weight
        self.ramp_steps = ramp_steps
        self.ambient_net: MLP | None = None
        self._ramp = 1.0

    def vector_dim(self, cond_dim: int) -> int:
        return 0

    def spatial_dim(self, cond_dim: int) -> int:
        return self.grid.output_dim

    def build(self, cond_dim: int, modulation_widths: Sequence[int], position_dim: int = 0) -> None:
        if position_dim <= 0:
            raise ValueError("AmbientFusion reads the field's positional features: bind it with position_dim > 0")
        self.ambient_net = MLP(position_dim + cond_dim, self.grid.input_dim, self.hidden_dim, self.num_layers)

    def ambient(self, pos: Tensor, h_cond: Tensor) -> Tensor:
        """``[N, P], [cond_dim] -> [N, ambient_dim]`` in ``[-1, 1]``."""
        assert self.ambient_net is not None, "AmbientFusion.build was not called"
        code = h_cond.to(pos.dtype).expand(pos.shape[0], -1)
        return torch.tanh(self.ambient_net(torch.cat([pos, code], dim=-1)))

    def forward(self, h_cond: Tensor) -> Conditioning:
        def spatial(x: Tensor, pos: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
            ambient = self.ambient(pos, h_cond)
            return self.grid(ambient * self.grid.bound), {AMBIENT: ambient}

        return Conditioning(spatial=spatial)

    def on_train_step(self, paper_step: float) -> None:
        self._ramp = min(paper_step / self.ramp_steps, 1.0) if self.ramp_steps > 0 else 1.0

    def regularization(self, rays: RenderedRays) -> Tensor | None:
        if AMBIENT not in rays.values or self.weight == 0:
            return None
        weights = rays.points("weights")
        outside = (~rays.rays["face"][rays.point_rays()]).to(weights.dtype)
        # Weights detached: the loss moves ambient coordinates, never the density that weights them.
        per_point = rays.points(AMBIENT).abs().sum(-1) * weights.detach() * outside
        return self.weight * self._ramp * per_point.sum() / max(rays.num_rays, 1)


class AudioCode(ConditioningStrategy):
    """``inputs["audio"] [window, rows, feature_dim]`` -> AudioNet per frame -> attention smoothing ->
    ``h_cond [audio_dim]``, the audio code of RAD-NeRF and ER-NeRF; the fusion decides how it enters.

    Args:
        fusion: how the code enters the field (ER-NeRF: ``talker.baselines.er_nerf.RegionAttention``).
        feature_dim: audio features per window row (``data.audio_features``: 80 for aud_mel.npy,
            29 DeepSpeech, 1024 HuBERT).
        audio_dim: width of the audio code (RAD-NeRF, ER-NeRF: 32).
        rows: feature rows per frame window (16 in every format).
        window: neighbouring frames smoothed by attention (RAD-NeRF, ER-NeRF: 8; ``data.audio_window``).
    """

    inputs = ("audio",)

    def __init__(
        self, fusion: Fusion, feature_dim: int = 80, audio_dim: int = 32, rows: int = 16, *, window: int,
        lr: float | None = None,
    ) -> None:
        super().__init__(fusion, lr)
        self.feature_dim, self.audio_dim, self.rows, self.window = feature_dim, audio_dim, rows, window
        self.audio_net = WindowNet(feature_dim, audio_dim, length=rows, stride=2)
        self.smoothing = AttentionSmoothing(audio_dim, window)

    @property
    def cond_dim(self) -> int:
        return self.audio_dim

    def encode(self, inputs: Mapping[str, Tensor]) -> Tensor:
        audio = inputs["audio"]
        expected = (self.window, self.rows, self.feature_dim)
        if tuple(audio.shape) != expected:
            raise ValueError(
                f"{type(self).__name__} expects audio windows of shape {expected}, got {tuple(audio.shape)} "
                "(conditioning.feature_dim must match data.audio_features)"
            )
        return self.smoothing(self.audio_net(audio.float()))


class AudioSpatial(AudioCode):
    """RAD-NeRF: the audio code moves each point to ambient coordinates looked up in ``grid``.

    Args:
        fusion: factory of the :class:`AmbientFusion` (a Hydra partial), given ``grid``.
        grid: the ambient hash grid (RAD-NeRF: 2D, 16 levels, level dim 2, base 16, 2^16 rows).
        feature_dim, audio_dim, rows, window: the audio code (:class:`AudioCode`).
        lr: learning rate of the audio, attention and ambient nets (RAD-NeRF: its ``--lr_net``,
            5e-4). Watch for saturation: the audio code can grow until the ambient MLP's tanh
            sits at +-1 at every point, and while it does the field does not hear the audio
            (measured on the quickstart: code |a| 1.9 -> 30 within 100 steps at 1e-3 and 3e-3; at
            5e-4 |a| 26 and every point saturated by step 2400). README: known problem.
    """

    def __init__(
        self, fusion: Callable[..., AmbientFusion], grid: HashGrid, feature_dim: int = 80, audio_dim: int = 32,
        rows: int = 16, *, window: int, lr: float | None = None,
    ) -> None:
        super().__init__(fusion(grid=grid), feature_dim, audio_dim, rows, window=window, lr=lr)
