"""LokiTalk's region-specific deformation fields (Sec. 3.2, eq. 3-5) as a conditioning strategy.

The driving signals of a frame -- an audio-motion code ``F_a`` (here the expression landmarks, as the
other landmark systems are trained self-driven; talker's motion stage gives them from audio at test
time), the eye aspect ratio ``F_e`` and the head pose ``F_h`` -- enter the field by moving its points:

    dx_face  = Phi_face(PE(x); F_a, F_e)                 eq. 3
    dx_torso = Phi_torso(PE(x); F_h, dx_face)            eq. 4
    x'       = x + dx_face + dx_torso                    eq. 5, into one canonical radiance field

``PE`` is a hash grid (one for both fields, as the paper writes one ``PE``). Each signal reaches its
field through a signal-region cross-attention: per point a score ``beta_s(x) = sigmoid(<q_s(PE(x)),
k_s(F_s)> / sqrt(d))`` gates the signal's value ``v_s(F_s)``. Scores are independent per signal (a
sigmoid, not a softmax over the signals), so a point outside every region can ignore them all, which
is what the attention regulariser (eq. 8-9) asks of it.

Where this sits in talker: the strategy returns ``Conditioning(warp=...)``, which every head field
applies before reading a point (``HeadField.canonical``), so the canonical radiance field is talker's
``HeadField`` at the field group's sizes, with no condition of its own. Its regulariser (``regularization``) is eq. 7 + eq. 8-9 on the training
render, with the region flags of the ray batch (``talker.data.landmarks.RAY_REGIONS``).

Torso: the paper renders head and torso with this one field. talker keeps its separate 2D torso stage
(``schedule.torso_steps``) because its head stage renders the head over the ground-truth torso (the
data's ``background``): the head field never has to explain the shoulders, and the torso stage then
learns them under the frozen head. ``dx_torso`` therefore moves what the head field itself renders
below the chin (neck, collar) with the head pose. Learning the whole portrait in the 3D field needs
head-stage rays over the clean background ``bc`` and a box that holds the shoulders (docs/lokitalk.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from talker.conditioning.base import Conditioning, Fusion, RenderedRays
from talker.conditioning.glo_concat import GloConcat
from talker.encoders.hashgrid import HashGrid
from talker.fields.inputs import eye_ratio
from talker.fields.torso import pose_vector
from talker.losses.regions import attention_regularization, region_regularization
from talker.nn.mlp import MLP

# Per-point values the warp reports (FieldOutput.extras -> RenderedRays.values).
DX_FACE, DX_TORSO = "dx_face", "dx_torso"
DX = "dx"  # the one offset of UnifiedDeformation (Table 2's O+D)
# The driving signals, in the order of h_cond, and which deformation field each drives.
AUDIO, EYE, POSE = "audio", "eye", "pose"
FACE_SIGNALS, TORSO_SIGNALS = (AUDIO, EYE), (POSE,)
POSE_DIM = 6  # Euler angles + translation (talker.fields.torso.pose_vector)
# The least std a standardised F_e divides by: a tenth of the open eye's ratio (about 0.3).
EYE_STD_FLOOR = 0.03

# A replacement last layer (weight [out, hidden], bias [out]): what ID-aware transfer's hyper-network
# will produce per identity.
LastLayer = tuple[Tensor, Tensor]
# The deformation trunk's nonlinearities (conditioning.fusion.activation).
TRUNK_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"relu": torch.relu, "silu": F.silu}


def attention_key(signal: str) -> str:
    """The per-point value under which a signal's attention score comes back from the render."""
    return f"attention_{signal}"


class DeformationMLP(nn.Module):
    """``[N, dim_in] -> [N, 3]`` offsets: a ReLU trunk and a last linear layer that starts at zero (the
    identity warp) and can be replaced per call (``last``), so that a hyper-network can supply it.

    ``layer_norm`` puts a layer norm without gain or bias (each point's pre-activations centred
    and scaled across the units) before every ReLU of the trunk, so that at every point about half of
    the units are on whatever the weights and biases: the trunk cannot die. With the plain ReLU trunk
    the photometric loss switched every last hidden unit of LokiTalk's face field off over the face
    within 200 steps (it pushed the second layer's weights and biases negative), leaving ``dx_face`` a
    constant offset that no signal moves (docs/lokitalk.md). The paper gives no architecture for its
    deformation MLPs; ``False`` (the plain trunk) is the default so that runs made before keep loading
    as they were trained; configs/conditioning/lokitalk.yaml sets it (lokitalk_id does not: it stalled
    the multi-identity pre-training).

    ``activation`` is the trunk's nonlinearity (:data:`TRUNK_ACTIVATIONS`): ``relu`` (the default, as
    trained before the option) or ``silu``, whose gradient does not vanish for the small negative
    pre-activations that switched the plain ReLU trunk off. Measured, SiLU keeps the trunk alive but
    left both Table 2 deformation rows nearly deaf (mouth gaps 0.50 and 0.89 dB) and the pre-training at
    21.65 dB held-out (docs/lokitalk.md): the configs keep ``relu``.
    """

    def __init__(
        self, dim_in: int, hidden_dim: int = 64, num_layers: int = 3, dim_out: int = 3, layer_norm: bool = False,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if num_layers < 2:
            raise ValueError(f"conditioning.fusion.num_layers={num_layers}: a deformation MLP needs at least 2 layers")
        # An MLP for its parameters' names (checkpoints made before layer_norm keep loading);
        # hidden() applies its layers itself.
        self.trunk = MLP(dim_in, hidden_dim, hidden_dim, num_layers - 1)
        self.last = nn.Linear(hidden_dim, dim_out)
        nn.init.zeros_(self.last.weight)  # zero offsets at the start: x' = x
        nn.init.zeros_(self.last.bias)
        self.layer_norm = layer_norm
        if activation not in TRUNK_ACTIVATIONS:
            raise ValueError(
                f"conditioning.fusion.activation={activation!r}: expected one of {sorted(TRUNK_ACTIVATIONS)}"
            )
        self.activation = TRUNK_ACTIVATIONS[activation]

    @property
    def last_shape(self) -> tuple[int, int]:
        """``(out, hidden)``: the shape of the weight a hyper-network must produce."""
        return tuple(self.last.weight.shape)  # type: ignore[return-value]

    def hidden(self, x: Tensor) -> Tensor:
        """``[N, dim_in] -> [N, hidden]``: the trunk's last activations (what ``last`` reads)."""
        for layer in self.trunk.layers:
            x = layer(x)
            if self.layer_norm:
                x = F.layer_norm(x, x.shape[-1:])
            x = self.activation(x)
        return x

    def forward(self, x: Tensor, last: LastLayer | None = None) -> Tensor:
        weight, bias = last if last is not None else (self.last.weight, self.last.bias)
        return F.linear(self.hidden(x), weight, bias)


class SignalAttention(nn.Module):
    """Cross-attention of one driving signal ``[S]`` with the points' encodings ``[N, P]``:
    ``(beta [N, 1] * v [dim], beta [N])`` with ``beta = sigmoid(sqrt(dim) * cos(q(PE), k(F)))``.

    The logit is a cosine (query and key normalised, as QK-norm attention does), so ``beta`` stays in
    ``sigmoid(+-sqrt(dim))`` (0.018..0.982 at dim 16). With the plain ``<q, k> / sqrt(dim)`` the
    attention regulariser (eq. 8-9) was met by growing the landmark code ``F_a`` (norm 4.9 at the start,
    287 at step 200, 841 at step 800 in Table 2's O+D+R run): ``beta_audio`` saturated at 0 everywhere,
    its gradient vanished, the face deformation's ReLUs died and the head stopped following its audio
    signal (mouth gap 0.49 dB; docs/lokitalk.md). The paper gives no formula for its attention.
    """

    def __init__(self, position_dim: int, signal_dim: int, dim: int) -> None:
        super().__init__()
        self.query = nn.Linear(position_dim, dim)
        self.key = nn.Linear(signal_dim, dim)
        self.value = nn.Linear(signal_dim, dim)
        self.dim = dim

    def forward(self, pos: Tensor, signal: Tensor) -> tuple[Tensor, Tensor]:
        signal = signal.to(pos.dtype)
        query, key = F.normalize(self.query(pos), dim=-1), F.normalize(self.key(signal), dim=-1)
        score = torch.sigmoid(math.sqrt(self.dim) * (query @ key))
        return score.unsqueeze(-1) * self.value(signal), score


class CascadedDeformation(Fusion):
    """``h_cond -> Conditioning(warp=...)``: the face and torso deformation fields (eq. 3-5).

    ``regularization(rays)`` is ``region_weight`` x eq. 7 (``dx_face`` outside ``face_region``,
    ``dx_torso`` outside ``torso_region``) + ``attention_weight`` x eq. 8-9 (each signal's score
    outside its region of ``signal_regions``).

    Args:
        grid: the hash-grid positional encoding ``PE`` of both fields.
        hidden_dim, num_layers, layer_norm, activation: each deformation MLP (:class:`DeformationMLP`).
        attention_dim: width of the signal-region cross-attention's queries, keys and values.
        region_weight, attention_weight: the paper's lambda_r and lambda_att (it gives no values).
        face_region, torso_region: ray-batch region flags where each deformation may act.
        signal_regions: signal -> the region flag it drives (``audio``: ``mouth``, ``eye``: ``eyes``,
            ``pose``: ``torso``).
    """

    # The per-point offsets it reports, each [N, 3] (the deformation heat maps composite their norms).
    deformations: tuple[str, ...] = (DX_FACE, DX_TORSO)
    # Width of a per-identity feature both MLPs also read (ID-aware transfer's dynamic feature); 0: none.
    identity_dim: int = 0
    # Parts of h_cond after the driving signals that subclasses read (ID-aware transfer's identity).
    extra_signals: tuple[str, ...] = ()

    def __init__(
        self, grid: HashGrid, hidden_dim: int = 64, num_layers: int = 3, attention_dim: int = 16,
        region_weight: float = 1e-3, attention_weight: float = 1e-3, face_region: str = "face",
        torso_region: str = "torso", signal_regions: Mapping[str, str] | None = None, layer_norm: bool = False,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        self.layer_norm, self.activation = layer_norm, activation
        if grid.input_dim != 3:
            raise ValueError(f"conditioning.grid.input_dim={grid.input_dim}: the deformation fields encode 3D points")
        self.grid, self.hidden_dim, self.num_layers, self.attention_dim = grid, hidden_dim, num_layers, attention_dim
        self.region_weight, self.attention_weight = region_weight, attention_weight
        self.deformation_regions = {DX_FACE: face_region, DX_TORSO: torso_region}
        self.signal_regions = dict(signal_regions or {AUDIO: "mouth", EYE: "eyes", POSE: "torso"})
        self.signals: dict[str, int] = {}  # signal -> width in h_cond, set by the strategy (split_as)
        self.attention = nn.ModuleDict()
        self.face: DeformationMLP | None = None
        self.torso: DeformationMLP | None = None

    def split_as(self, signals: Mapping[str, int]) -> None:
        """Declare the layout of ``h_cond``: the widths of ``audio``, ``eye`` and ``pose``, in order."""
        expected = (*FACE_SIGNALS, *TORSO_SIGNALS, *self.extra_signals)
        if tuple(signals) != expected:
            raise ValueError(f"{type(self).__name__} reads the signals {expected}, got {tuple(signals)}")
        self.signals = dict(signals)

    def vector_dim(self, cond_dim: int) -> int:
        return 0

    def build(self, cond_dim: int, modulation_widths: Sequence[int], position_dim: int = 0) -> None:
        if sum(self.signals.values()) != cond_dim:
            raise ValueError(f"CascadedDeformation: signals {self.signals} do not add up to h_cond's {cond_dim}")
        pos, att, extra = self.grid.output_dim, self.attention_dim, self.identity_dim
        attended = {name: self.signals[name] for name in (*FACE_SIGNALS, *TORSO_SIGNALS)}
        self.attention = nn.ModuleDict({name: SignalAttention(pos, dim, att) for name, dim in attended.items()})
        self.face = self.deformation_mlp(pos + att * len(FACE_SIGNALS) + extra)
        self.torso = self.deformation_mlp(pos + att * len(TORSO_SIGNALS) + 3 + extra)

    def deformation_mlp(self, dim_in: int) -> DeformationMLP:
        return DeformationMLP(dim_in, self.hidden_dim, self.num_layers, layer_norm=self.layer_norm, activation=self.activation)

    def split(self, h_cond: Tensor) -> dict[str, Tensor]:
        """``h_cond`` -> ``{signal: [width]}``."""
        return dict(zip(self.signals, h_cond.split(list(self.signals.values()))))

    def deform(
        self, x: Tensor, signals: Mapping[str, Tensor], last: Mapping[str, LastLayer] | None = None,
        identity: Tensor | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """``x [N, 3] -> (x + dx_face + dx_torso, values)``; ``last`` may replace the last layer of
        ``face`` and/or ``torso``, and both read ``identity [identity_dim]`` next to their signals
        (ID-aware transfer's hyper-network and dynamic feature)."""
        assert self.face is not None and self.torso is not None, "CascadedDeformation.build was not called"
        last = last or {}
        pos = self.grid(x)
        values: dict[str, Tensor] = {}
        extra = [identity.to(pos.dtype).expand(len(pos), -1)] if identity is not None else []

        def attended(names: Sequence[str]) -> list[Tensor]:
            features = []
            for name in names:
                feature, values[attention_key(name)] = self.attention[name](pos, signals[name])
                features.append(feature)
            return features

        dx_face = self.face(torch.cat([pos, *attended(FACE_SIGNALS), *extra], dim=-1), last.get("face"))
        # The torso follows the head pose and, through dx_face, the jaw (eq. 4).
        dx_torso = self.torso(torch.cat([pos, *attended(TORSO_SIGNALS), dx_face, *extra], dim=-1), last.get("torso"))
        values[DX_FACE], values[DX_TORSO] = dx_face, dx_torso
        return x + dx_face.to(x.dtype) + dx_torso.to(x.dtype), values

    def forward(self, h_cond: Tensor) -> Conditioning:
        signals = self.split(h_cond)
        warp: Callable[[Tensor], tuple[Tensor, dict[str, Tensor]]] = lambda x: self.deform(x, signals)
        return Conditioning(warp=warp)

    def regularization(self, rays: RenderedRays) -> Tensor:
        region = region_regularization(rays, self.deformation_regions)
        scores = {attention_key(signal): region for signal, region in self.signal_regions.items()}
        return self.region_weight * region + self.attention_weight * attention_regularization(rays, scores)


class UnifiedDeformation(CascadedDeformation):
    """Table 2's O+D: one deformation field of all driving signals, without the region-specific split.

    ``dx = Phi(PE(x); F_a, F_e, F_h)``, ``x' = x + dx``: the signals are concatenated to every point's
    encoding (no signal-region cross-attention, no face / torso cascade), and nothing is regularised by
    region (eq. 7-9 need the split). Selected by the strategy's ``fusion`` (``conditioning=lokitalk_unified``);
    the constructor is :class:`CascadedDeformation`'s, whose region arguments it does not use.
    """

    deformations = (DX,)

    def build(self, cond_dim: int, modulation_widths: Sequence[int], position_dim: int = 0) -> None:
        if sum(self.signals.values()) != cond_dim:
            raise ValueError(f"UnifiedDeformation: signals {self.signals} do not add up to h_cond's {cond_dim}")
        self.face = self.deformation_mlp(self.grid.output_dim + cond_dim + self.identity_dim)
        self.torso = None

    def deform(
        self, x: Tensor, signals: Mapping[str, Tensor], last: Mapping[str, LastLayer] | None = None,
        identity: Tensor | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """``x [N, 3] -> (x + dx, {"dx": dx})``; ``last`` may replace the field's last layer (``"face"``);
        ``identity`` joins the signals."""
        assert self.face is not None, "UnifiedDeformation.build was not called"
        pos = self.grid(x)
        extra = [identity] if identity is not None else []
        h_cond = torch.cat([*(signals[name] for name in self.signals), *extra]).to(pos.dtype)
        dx = self.face(torch.cat([pos, h_cond.expand(len(pos), -1)], dim=-1), (last or {}).get("face"))
        return x + dx.to(x.dtype), {DX: dx}

    def regularization(self, rays: RenderedRays) -> Tensor | None:
        return None


class RegionSignals(GloConcat):
    """LokiTalk's driving signals of a frame, ``h_cond = [F_a, F_e, F_h]``:

    - ``F_a [code_dim]``: the landmark window's code (GeneFace's landmark net + attention smoothing,
      :class:`GloConcat`'s encoder), standing in for the paper's audio-motion feature;
    - ``F_e [1]``: the eye aspect ratio of the window's centre frame (``eye_ratio``: ``inputs["eye"]``
      replaces it), as it is: a scale-free number (about 0.3 open, 0 closed). With ``standardise_eye``
      it is centred and scaled by the training frames' (the std floored at :data:`EYE_STD_FLOOR`, so
      that a clip that never blinks does not blow a tiny jitter up); a blink is then several units
      from the open eye, as far as the standardised pose moves, instead of 0.3;
    - ``F_h [6]``: the head pose (``pose_vector``: Euler angles and translation), standardised by the
      training frames' (translations are in each dataset's own units).

    Reads ``inputs["landmarks"] [window, 68, 3]`` and ``inputs["pose"] [1, 4, 4]``.

    Args:
        fusion: factory of the :class:`CascadedDeformation` (a Hydra partial), given ``grid``.
        grid: the deformation fields' hash-grid positional encoding.
        window, num_landmarks, code_dim, lr: the landmark code (:class:`GloConcat`).
        standardise_eye: standardise ``F_e`` by the training frames' eye ratios (False: as it is, as
            runs made before the option were trained).
    """

    inputs = ("landmarks", "pose")
    drives_eyes = True  # F_e comes from eye_ratio: the condition key ``eye`` replaces it

    def __init__(
        self, fusion: Callable[..., CascadedDeformation], grid: HashGrid, window: int = 5, num_landmarks: int = 68,
        code_dim: int = 64, lr: float | None = None, standardise_eye: bool = False,
    ) -> None:
        deformation = fusion(grid=grid)
        super().__init__(deformation, window, num_landmarks, code_dim, lr)
        deformation.split_as(self.signal_widths())
        self.register_buffer("pose_mean", torch.zeros(POSE_DIM))
        self.register_buffer("pose_std", torch.ones(POSE_DIM))
        self.standardise_eye = standardise_eye
        if standardise_eye:  # only then, so that checkpoints made without them keep loading
            self.register_buffer("eye_mean", torch.zeros(1))
            self.register_buffer("eye_std", torch.ones(1))

    def signal_widths(self) -> dict[str, int]:
        """The parts of ``h_cond`` in order, ``name -> width``, as the fusion splits it."""
        return {AUDIO: self.code_dim, EYE: 1, POSE: POSE_DIM}

    @property
    def cond_dim(self) -> int:
        return sum(self.signal_widths().values())

    def eye_and_pose(self, inputs: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """The raw ``F_e [1]`` and ``F_h [6]`` of a frame."""
        pose = inputs["pose"]
        if tuple(pose.shape) != (1, 4, 4):
            raise ValueError(f"RegionSignals expects a pose of shape (1, 4, 4) (talker.data.frames), got {tuple(pose.shape)}")
        return eye_ratio(inputs, type(self).__name__), pose_vector(pose[0])

    @torch.no_grad()
    def prepare(self, conditions: Sequence[Mapping[str, Tensor]]) -> None:
        """The landmark statistics (:class:`GloConcat`) and those of the pose."""
        if not bool(self.prepared) and conditions:
            eyes, poses = (torch.stack(parts) for parts in zip(*(self.eye_and_pose(c) for c in conditions)))
            self.pose_mean.copy_(poses.mean(0))
            self.pose_std.copy_(poses.std(0, unbiased=False).clamp_min(1e-4))
            if self.standardise_eye:
                self.eye_mean.copy_(eyes.mean(0))
                self.eye_std.copy_(eyes.std(0, unbiased=False).clamp_min(EYE_STD_FLOOR))
        super().prepare(conditions)

    def encode(self, inputs: Mapping[str, Tensor]) -> Tensor:
        code = super().encode(inputs)
        eye, pose = self.eye_and_pose(inputs)
        pose = (pose - self.pose_mean) / self.pose_std
        if self.standardise_eye:
            eye = (eye - self.eye_mean) / self.eye_std
        return torch.cat([code, eye.to(code), pose.to(code)])
