"""RAD-NeRF's audio conditioning (Tang et al. 2022, Sec. 3.2): audio code + audio-spatial decomposition.

The audio feature windows of 8 neighbouring frames go through AudioNet (a :class:`WindowNet`) and
are smoothed by attention into one audio code ``a`` (:class:`AudioCode`, which ER-NeRF shares).
Instead of entering the sigma net directly, ``a`` moves each point to *ambient* coordinates: an MLP
maps ``[pos_enc(x), a]`` to a point in ``[-1, 1]^2``, which is looked up in a 2D hash grid; its
features join the positional features. The ambient regulariser pulls the ambient coordinates of what
is rendered outside the lower face towards 0: the audio may move the mouth and jaw, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from talker.conditioning.base import Conditioning, ConditioningStrategy, Fusion, RenderedRays
from talker.conditioning.penalty import rendered_ray_sum
from talker.conditioning.temporal import AttentionSmoothing, WindowNet
from talker.encoders.hashgrid import HashGrid
from talker.nn.mlp import MLP


# The per-point value under which the ambient coordinates come back from the render.
AMBIENT = "ambient"


class AmbientFusion(Fusion):
    """``h_cond -> Conditioning(spatial=...)``: the audio-spatial decomposition.

    ``spatial(x, pos) = grid(tanh(MLP([pos, h_cond])))`` per point, the MLP without biases (as
    RAD-NeRF's: the ambient point of a zero input is the origin); the ambient coordinates go with
    the features as the point value ``"ambient"``. ``regularization(rays)`` is RAD-NeRF's ambient
    loss (:func:`~talker.conditioning.penalty.ray_sum_penalty`): per ray, the unweighted sum of
    ``|ambient|_1`` over every marched sample until the transmittance falls below 1e-4, averaged
    over all the rays, the rays of the ``exempt`` region (RAD-NeRF: the lower face, nostrils to chin,
    where the audio must be free to move the mouth) counting as zero; times a weight that grows
    linearly from 0 to ``weight`` over the first ``ramp_steps`` paper steps.

    Args:
        grid: the ambient grid; its ``input_dim`` is the ambient dimension (RAD-NeRF: 2, tiled).
        hidden_dim, num_layers: the ambient MLP (RAD-NeRF: 64, 3).
        weight: regulariser weight (RAD-NeRF's ``--lambda_amb``: 0.1, the YAML's value).
        ramp_steps: paper steps of the weight's linear ramp (RAD-NeRF: its whole schedule).
        exempt: the ray-batch region flag whose rays the regulariser leaves free
            (``talker.data.landmarks.RAY_REGIONS``; RAD-NeRF: ``lower_face``).
    """

    def __init__(
        self, grid: HashGrid, hidden_dim: int = 64, num_layers: int = 3, weight: float = 0.1,
        ramp_steps: float = 240_000, exempt: str = "lower_face",
    ) -> None:
        super().__init__()
        self.grid, self.hidden_dim, self.num_layers, self.weight = grid, hidden_dim, num_layers, weight
        self.ramp_steps, self.exempt = ramp_steps, exempt
        self.ambient_net: MLP | None = None
        self._ramp = 1.0

    def vector_dim(self, cond_dim: int) -> int:
        return 0

    def spatial_dim(self, cond_dim: int) -> int:
        return self.grid.output_dim

    def build(self, cond_dim: int, modulation_widths: Sequence[int], position_dim: int = 0) -> None:
        if position_dim <= 0:
            raise ValueError("AmbientFusion reads the field's positional features: bind it with position_dim > 0")
        self.ambient_net = MLP(position_dim + cond_dim, self.grid.input_dim, self.hidden_dim, self.num_layers, bias=False)

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
        per_point = rays.points(AMBIENT).abs().sum(-1)
        return self.weight * self._ramp * rendered_ray_sum(rays, per_point, self.exempt)


class AudioCode(ConditioningStrategy):
    """``inputs["audio"] [window, rows, feature_dim]`` -> standardised -> AudioNet per frame ->
    attention smoothing -> ``h_cond [audio_dim]``, the audio code of RAD-NeRF and ER-NeRF; the fusion
    decides how it enters.

    Features are standardised per channel with the mean and standard deviation of the training
    split's frames (:meth:`prepare`, kept in buffers: a checkpoint carries them, and driving with new
    audio uses them, never statistics of the new audio). The reference codes feed DeepSpeech or
    wav2vec logits unscaled; talker's log-mel rows (mean about -3.8, spread -7..0.7) would instead
    give AudioNet an input far from zero whose constant part dominates the code. A frame of all-zero
    features is the zero padding at a clip's ends (``talker.data.frames``: no audio there) and stays
    zero. AudioNet keeps PyTorch's default initialisation, as the references.

    Args:
        fusion: how the code enters the field (ER-NeRF: ``talker.baselines.er_nerf.RegionAttention``).
        feature_dim: audio features per window row (``data.audio_features``: 80 for aud_mel.npy,
            29 DeepSpeech, 1024 HuBERT).
        audio_dim: width of the audio code (RAD-NeRF: 64, its network's default; ER-NeRF: 32).
        rows: feature rows per frame window (16 in every format).
        window: neighbouring frames smoothed by attention (RAD-NeRF, ER-NeRF: 8; ``data.audio_window``).
        lr: learning rate of the strategy's networks; None: the model's ``lr_net``.
        attention_lr_scale: the attention-smoothing net trains at this multiple of the strategy's
            rate (RAD-NeRF, ER-NeRF: 5).
        attention_weight_decay: its weight decay; None: the model's (ER-NeRF: 1e-4).
    """

    inputs = ("audio",)

    def __init__(
        self, fusion: Fusion, feature_dim: int = 80, audio_dim: int = 32, rows: int = 16, *, window: int,
        lr: float | None = None, attention_lr_scale: float = 1.0, attention_weight_decay: float | None = None,
    ) -> None:
        super().__init__(fusion, lr)
        self.feature_dim, self.audio_dim, self.rows, self.window = feature_dim, audio_dim, rows, window
        self.attention_lr_scale, self.attention_weight_decay = attention_lr_scale, attention_weight_decay
        self.audio_net = WindowNet(feature_dim, audio_dim, length=rows, stride=2, kaiming=False)
        self.smoothing = AttentionSmoothing(audio_dim, window)
        self.register_buffer("feature_mean", torch.zeros(feature_dim))
        self.register_buffer("feature_std", torch.ones(feature_dim))
        self.register_buffer("prepared", torch.tensor(False))

    @property
    def cond_dim(self) -> int:
        return self.audio_dim

    @torch.no_grad()
    def prepare(self, conditions: Sequence[Mapping[str, Tensor]]) -> None:
        """Per-channel statistics of the training frames' own feature windows (the centre frame of
        each condition); computed once: a resumed run, and a loaded checkpoint, keep the saved ones."""
        if bool(self.prepared) or not conditions:
            return
        rows = torch.cat([c["audio"][self.window // 2].float().reshape(-1, self.feature_dim) for c in conditions])
        self.feature_mean.copy_(rows.mean(0))
        self.feature_std.copy_(rows.std(0, unbiased=False).clamp_min(1e-4))
        self.prepared.fill_(True)

    def standardise(self, audio: Tensor) -> Tensor:
        """``[window, rows, C]`` -> standardised with the training statistics; all-zero (padding)
        frames stay zero."""
        real = audio.flatten(1).ne(0).any(dim=1).view(-1, 1, 1)
        return torch.where(real, (audio - self.feature_mean) / self.feature_std, torch.zeros_like(audio))

    def encode(self, inputs: Mapping[str, Tensor]) -> Tensor:
        audio = inputs["audio"]
        expected = (self.window, self.rows, self.feature_dim)
        if tuple(audio.shape) != expected:
            raise ValueError(
                f"{type(self).__name__} expects audio windows of shape {expected}, got {tuple(audio.shape)} "
                "(conditioning.feature_dim must match data.audio_features)"
            )
        return self.smoothing(self.audio_net(self.standardise(audio.float())))

    def param_groups(self, lr_net: float, weight_decay: float, exclude: Collection[int]) -> list[dict[str, Any]]:
        """The attention net in a group of its own (``attention``) at ``attention_lr_scale`` times the
        strategy's rate, as the references' ``get_params``; the rest as the base class."""
        if self.attention_lr_scale == 1.0 and self.attention_weight_decay is None:
            return super().param_groups(lr_net, weight_decay, exclude)
        attention = list(self.smoothing.parameters())
        groups = super().param_groups(lr_net, weight_decay, {*exclude, *map(id, attention)})
        decay = weight_decay if self.attention_weight_decay is None else self.attention_weight_decay
        base = lr_net if self.lr is None else self.lr
        return [*groups, {"name": "attention", "params": attention, "lr": base * self.attention_lr_scale, "weight_decay": decay}]


class AudioSpatial(AudioCode):
    """RAD-NeRF: the audio code moves each point to ambient coordinates looked up in ``grid``.

    Args:
        fusion: factory of the :class:`AmbientFusion` (a Hydra partial), given ``grid``.
        grid: the ambient grid (RAD-NeRF: 2D, 16 levels, level dim 2, base 16, 2^16 rows, tiled).
        feature_dim, audio_dim, rows, window, lr, attention_lr_scale, attention_weight_decay: the
            audio code (:class:`AudioCode`; RAD-NeRF: audio_dim 64, lr its ``--lr_net`` 5e-4, the
            attention net at 5x). docs/audio_driven_baselines.md compares the port with RAD-NeRF's code.
    """

    def __init__(
        self, fusion: Callable[..., AmbientFusion], grid: HashGrid, feature_dim: int = 80, audio_dim: int = 64,
        rows: int = 16, *, window: int, lr: float | None = None, attention_lr_scale: float = 1.0,
        attention_weight_decay: float | None = None,
    ) -> None:
        super().__init__(
            fusion(grid=grid), feature_dim, audio_dim, rows, window=window, lr=lr,
            attention_lr_scale=attention_lr_scale, attention_weight_decay=attention_weight_decay,
        )
