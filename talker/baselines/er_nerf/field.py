"""ER-NeRF's head field: tri-plane hash encoding, region-attended audio, gated eye input, uncertainty."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

from talker.conditioning.base import Conditioning, ConditioningSpec
from talker.fields.base import Field, FieldOutput
from talker.encoders.triplane import TriPlaneHashGrid
from talker.fields.head import HeadField
from talker.fields.inputs import Frame, FrameInput
from talker.nn.mlp import MLP

UNCERTAINTY = "uncertainty"


class ERNeRFField(HeadField):
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
        position_encoder: TriPlaneHashGrid,
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
        super().__init__(
            position_encoder, cond_spec, num_layers, hidden_dim, geo_feat_dim, num_layers_color, hidden_dim_color,
            sh_degree, density_inputs=[eye] if eye is not None else [], color_inputs=color_inputs,
        )
        pos_dim = self.encoder.output_dim
        self.eye_gate = MLP(pos_dim, eye.dim, eye_gate_hidden, 2, bias=False) if eye is not None else None
        self.uncertainty_net = MLP(pos_dim, 1, uncertainty_hidden, 2, bias=False)

    def bind(self, cond: Conditioning, frame: Frame | None = None) -> Callable[[Tensor, Tensor], FieldOutput]:
        """The plain field: its eye input is gated per point, not a constant to fold into a bias."""
        return Field.bind(self, cond, frame)

    def density_features(self, frame: Frame | None, pos: Tensor) -> list[Tensor]:
        """The eye input, gated per point by the eye attention (none without an eye input)."""
        features = super().density_features(frame, pos)
        if self.eye_gate is None:
            return features
        return [features[0] * torch.sigmoid(self.eye_gate(pos))]

    def extras(self, pos: Tensor) -> dict[str, Tensor]:
        if not (self.training and torch.is_grad_enabled()):
            return {}  # only the training loss reads it (ER-NeRF: zero at test)
        return {UNCERTAINTY: F.softplus(self.uncertainty_net(pos.detach())[:, 0].float())}
