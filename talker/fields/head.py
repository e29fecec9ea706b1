"""The head field of R2-Talker / RAD-NeRF: hash-grid position encoding, sigma net, colour net."""

from __future__ import annotations

import torch
from torch import Tensor

from talker.conditioning.base import Conditioning, ConditioningSpec
from talker.encoders.hashgrid import HashGrid
from talker.encoders.sh import SphericalHarmonics
from talker.fields.base import Field, FieldOutput
from talker.fields.mlp import MLP, trunc_exp


class HeadField(Field):
    """Positional hash grid -> sigma net (modulatable) -> density + geometry feature -> colour net.

    The sigma net's input is ``[pos_enc(x), cond.spatial(x, pos_enc), cond.vector]`` (the
    conditioning parts that exist); its hidden layers take ``cond.scales``/``cond.shifts``. The
    colour net sees the spherical-harmonics view direction and the geometry feature.

    Args:
        position_encoder: the positional hash grid (R2 Table 6: 16 levels, level dim 4,
            base 32, 2^16 entries, desired 2048 * bound).
        cond_spec: sizes reserved for the conditioning strategy's vector / spatial features.
        num_layers, hidden_dim, geo_feat_dim: sigma net (Table 6: 3 layers, hidden 128, out 128+1).
        num_layers_color, hidden_dim_color: colour net.
        sh_degree: degree of the direction encoding.
    """

    def __init__(
        self,
        position_encoder: HashGrid,
        cond_spec: ConditioningSpec,
        num_layers: int = 3,
        hidden_dim: int = 128,
        geo_feat_dim: int = 128,
        num_layers_color: int = 2,
        hidden_dim_color: int = 64,
        sh_degree: int = 4,
    ) -> None:
        super().__init__()
        self.encoder = position_encoder
        if self.encoder.input_dim != 3:
            raise ValueError(f"HeadField needs a 3D position encoder, got input_dim={self.encoder.input_dim}")
        self.bound = self.encoder.bound
        self.cond_spec = cond_spec
        sigma_in = self.encoder.output_dim + cond_spec.spatial_dim + cond_spec.vector_dim
        self.sigma_net = MLP(sigma_in, 1 + geo_feat_dim, hidden_dim, num_layers, bias=False)
        self.dir_encoder = SphericalHarmonics(sh_degree)
        self.color_net = MLP(self.dir_encoder.output_dim + geo_feat_dim, 3, hidden_dim_color, num_layers_color, bias=False)

    @property
    def modulation_widths(self) -> list[int]:
        return self.sigma_net.hidden_widths

    def _sigma_and_geometry(self, x: Tensor, cond: Conditioning) -> tuple[Tensor, Tensor]:
        pos = self.encoder(x)
        parts = [pos]
        if cond.spatial is not None:
            parts.append(cond.spatial(x, pos))
        if cond.vector is not None:
            parts.append(cond.vector.to(pos.dtype).expand(x.shape[0], -1))
        h = self.sigma_net(torch.cat(parts, dim=-1), cond.scales, cond.shifts)
        return trunc_exp(h[:, 0]), h[:, 1:]

    def density(self, x: Tensor, cond: Conditioning) -> Tensor:
        return self._sigma_and_geometry(x, cond)[0]

    def forward(self, x: Tensor, d: Tensor, cond: Conditioning) -> FieldOutput:
        sigma, geometry = self._sigma_and_geometry(x, cond)
        rgb = torch.sigmoid(self.color_net(torch.cat([self.dir_encoder(d), geometry], dim=-1)))
        return FieldOutput(sigma=sigma, rgb=rgb)
