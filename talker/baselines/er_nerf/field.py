"""ER-NeRF's head field: tri-plane hash encoding, region-attended audio, gated eye input, uncertainty."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from talker.conditioning.base import Conditioning, ConditioningSpec
from talker.encoders.sh import SphericalHarmonics
from talker.encoders.triplane import TriPlaneHashGrid
from talker.fields.base import Field, FieldOutput
from talker.fields.inputs import Frame, FrameInput
from talker.fields.mlp import MLP, trunc_exp

UNCERTAINTY = "uncertainty"


class ERNeRFField(Field):
    """ER-NeRF (Li et al. 2023): ``(x, d, cond, frame) -> (sigma, rgb)`` and, in training, an uncertainty.

    ::

        pos   = triplane(x)                                                  [N, P]
        eye   = eye_input(frame) * sigmoid(eye_gate(pos))                    eye attention, per point
        h     = sigma_net([pos, cond.spatial(x, pos), cond.vector, eye])     cond: any strategy; ER-NeRF's
        sigma = trunc_exp(h[:, 0]);  geometry = h[:, 1:]                     is RegionAttention's audio
        rgb   = sigmoid(color_net([SH(d), geometry, color_inputs(frame)]))
        u     = softplus(uncertainty_net(pos.detach()))                     extras["uncertainty"], training only

    The uncertainty only weights the training loss (``UncertaintyWeightedMSE``); its head reads the
    encoding without gradient, as in ER-NeRF, so it cannot bend the geometry to lower the loss.

    Args:
        position_encoder: a :class:`TriPlaneHashGrid` (ER-NeRF: 12 levels of 1 feature per plane,
            base 64, 2^14 rows, desired 512 * bound).
        cond_spec: sizes reserved for the conditioning strategy's vector / spatial features.
        num_layers, hidden_dim, geo_feat_dim: sigma net (ER-NeRF: 3, 64, 64).
        num_layers_color, hidden_dim_color: colour net (2, 64).
        sh_degree: degree of the direction encoding.
        eye: per-frame eye input (ER-NeRF: the blink measure; ``EyeBlink``), gated per point; None: none.
        eye_gate_hidden: hidden width of the eye gate (2 layers; ER-NeRF: 16).
        color_inputs: per-frame inputs of the colour net (ER-NeRF: ``IndividualCode`` of dim 4).
        uncertainty_hidden: hidden width of the uncertainty head (2 layers; ER-NeRF: 32).
    """

    def __init__(
        self,
        position_encoder: TriPlaneHashGrid | nn.Module,
        cond_spec: ConditioningSpec,
        num_layers: int = 3,
        hidden_dim: int = 64,
        geo_feat_dim: int = 64,
        num_layers_color: int = 2,
        hidden_dim_color: int = 64,
        sh_degree: int = 4,
        eye: FrameInput | None = None,
        eye_gate_hidden: int = 16,
        color_inputs: Sequence[FrameInput] = (),
        uncertainty_hidden: int = 32,
    ) -> None:
        super().__init__()
        self.encoder = position_encoder
        if self.encoder.input_dim != 3:
            raise ValueError(f"ERNeRFField needs a 3D position encoder, got input_dim={self.encoder.input_dim}")
        self.bound = self.encoder.bound
        self.cond_spec = cond_spec
        pos_dim = self.encoder.output_dim
        self.eye = eye
        self.eye_gate = MLP(pos_dim, eye.dim, eye_gate_hidden, 2, bias=False) if eye is not None else None
        sigma_in = pos_dim + cond_spec.spatial_dim + cond_spec.vector_dim + (eye.dim if eye is not None else 0)
        self.sigma_net = MLP(sigma_in, 1 + geo_feat_dim, hidden_dim, num_layers, bias=False)
        self.dir_encoder = SphericalHarmonics(sh_degree)
        self.color_inputs = nn.ModuleList(list(color_inputs))
        color_in = self.dir_encoder.output_dim + geo_feat_dim + sum(i.dim for i in self.color_inputs)
        self.color_net = MLP(color_in, 3, hidden_dim_color, num_layers_color, bias=False)
        self.uncertainty_net = MLP(pos_dim, 1, uncertainty_hidden, 2, bias=False)
        inputs = ([eye] if eye is not None else []) + list(self.color_inputs)
        self.frame_keys = tuple(dict.fromkeys(k for i in inputs for k in i.keys))

    @property
    def modulation_widths(self) -> list[int]:
        return self.sigma_net.hidden_widths

    @property
    def position_dim(self) -> int:  # type: ignore[override]
        return self.encoder.output_dim

    def _sigma_and_geometry(
        self, x: Tensor, cond: Conditioning, frame: Frame | None, pos: Tensor
    ) -> tuple[Tensor, Tensor]:
        parts = [pos]
        if cond.spatial is not None:
            parts.append(cond.spatial(x, pos))
        if cond.vector is not None:
            parts.append(cond.vector.to(pos.dtype).expand(x.shape[0], -1))
        if self.eye is not None:
            assert self.eye_gate is not None
            eye = self.eye(frame).to(device=pos.device, dtype=pos.dtype)
            parts.append(eye * torch.sigmoid(self.eye_gate(pos)))
        h = self.sigma_net(torch.cat(parts, dim=-1), cond.scales, cond.shifts)
        return trunc_exp(h[:, 0]), h[:, 1:]

    def density(self, x: Tensor, cond: Conditioning, frame: Frame | None = None) -> Tensor:
        return self._sigma_and_geometry(x, cond, frame, self.encoder(x))[0]

    def densities(
        self, x: Tensor, conds: Sequence[Conditioning], frames: Sequence[Frame | None] | None = None
    ) -> Tensor:
        """``[B, N]``; the tri-plane encoding, which no condition changes, is computed once."""
        pos = self.encoder(x)
        frames = frames if frames is not None else [None] * len(conds)
        return torch.stack([self._sigma_and_geometry(x, c, f, pos)[0] for c, f in zip(conds, frames)])

    def forward(self, x: Tensor, d: Tensor, cond: Conditioning, frame: Frame | None = None) -> FieldOutput:
        pos = self.encoder(x)
        sigma, geometry = self._sigma_and_geometry(x, cond, frame, pos)
        parts = [self.dir_encoder(d).to(geometry.dtype), geometry]
        for color_input in self.color_inputs:
            parts.append(color_input(frame).to(device=geometry.device, dtype=geometry.dtype).expand(x.shape[0], -1))
        rgb = torch.sigmoid(self.color_net(torch.cat(parts, dim=-1)))
        extras = {}
        if self.training and torch.is_grad_enabled():  # only the training loss reads it (ER-NeRF: zero at test)
            extras[UNCERTAINTY] = F.softplus(self.uncertainty_net(pos.detach())[:, 0].float())
        return FieldOutput(sigma=sigma, rgb=rgb, extras=extras)
