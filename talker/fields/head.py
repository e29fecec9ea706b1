"""The head field of R2-Talker / RAD-NeRF: hash-grid position encoding, sigma net, colour net."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from talker.conditioning.base import Conditioning, ConditioningSpec
from talker.encoders.base import Encoder
from talker.encoders.sh import SphericalHarmonics
from talker.fields.base import Field, FieldOutput
from talker.fields.inputs import Frame, FrameInput
from talker.nn.mlp import MLP, trunc_exp


class HeadField(Field):
    """Positional hash grid -> sigma net (modulatable) -> density + geometry feature -> colour net.

    The sigma net's input is ``[pos_enc(x), cond.spatial(x, pos_enc), cond.vector, density_inputs]``
    (the parts that exist); its hidden layers take ``cond.scales``/``cond.shifts``. The colour net
    sees ``[SH(d), geometry, color_inputs]``. With ``cond.warp`` (LokiTalk's deformation fields)
    every point is first moved to the canonical space, ``x <- warp(x)``, and this field is the one
    canonical radiance field the deformations share.

    Args:
        position_encoder: the positional encoder, ``[N, 3] -> [N, P]`` with ``bound`` and
            ``output_dim`` (R2 Table 6: a hash grid of 16 levels, level dim 4, base 32, 2^16 rows,
            desired 2048 * bound; ER-NeRF: a ``TriPlaneHashGrid``).
        cond_spec: sizes reserved for the conditioning strategy's vector / spatial features.
        num_layers, hidden_dim, geo_feat_dim: sigma net (Table 6: 3 layers, hidden 128, out 128+1).
        num_layers_color, hidden_dim_color: colour net.
        sh_degree: degree of the direction encoding.
        density_inputs: per-frame inputs of the sigma net (RAD-NeRF: ``EyeBlink``).
        color_inputs: per-frame inputs of the colour net (RAD-NeRF: ``IndividualCode``).
    """

    def __init__(
        self,
        position_encoder: Encoder,
        cond_spec: ConditioningSpec,
        num_layers: int = 3,
        hidden_dim: int = 128,
        geo_feat_dim: int = 128,
        num_layers_color: int = 2,
        hidden_dim_color: int = 64,
        sh_degree: int = 4,
        density_inputs: Sequence[FrameInput] = (),
        color_inputs: Sequence[FrameInput] = (),
    ) -> None:
        super().__init__()
        self.encoder = position_encoder
        if self.encoder.input_dim != 3:
            raise ValueError(f"HeadField needs a 3D position encoder, got input_dim={self.encoder.input_dim}")
        self.bound = self.encoder.bound
        self.cond_spec = cond_spec
        self.density_inputs = nn.ModuleList(list(density_inputs))
        self.color_inputs = nn.ModuleList(list(color_inputs))
        sigma_in = self.encoder.output_dim + cond_spec.spatial_dim + cond_spec.vector_dim
        sigma_in += sum(i.dim for i in self.density_inputs)
        self.sigma_net = MLP(sigma_in, 1 + geo_feat_dim, hidden_dim, num_layers, bias=False)
        self.dir_encoder = SphericalHarmonics(sh_degree)
        color_in = self.dir_encoder.output_dim + geo_feat_dim + sum(i.dim for i in self.color_inputs)
        self.color_net = MLP(color_in, 3, hidden_dim_color, num_layers_color, bias=False)
        self.frame_keys = tuple(dict.fromkeys(k for i in [*self.density_inputs, *self.color_inputs] for k in i.keys))

    @property
    def modulation_widths(self) -> list[int]:
        return self.sigma_net.hidden_widths

    @property
    def position_dim(self) -> int:  # type: ignore[override]
        return self.encoder.output_dim

    @staticmethod
    def _frame_features(inputs: nn.ModuleList, frame: Frame | None, n: int, like: Tensor) -> list[Tensor]:
        return [inp(frame).to(device=like.device, dtype=like.dtype).expand(n, -1) for inp in inputs]

    @staticmethod
    def canonical(x: Tensor, cond: Conditioning) -> tuple[Tensor, dict[str, Tensor]]:
        """The point in the canonical space and the warp's per-point values (``x`` itself without a warp)."""
        return cond.warp(x) if cond.warp is not None else (x, {})

    def _sigma_and_geometry(
        self, x: Tensor, cond: Conditioning, frame: Frame | None, pos: Tensor | None = None
    ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """Density, geometry feature and the conditioning's per-point values. ``pos``, when given, is
        the encoding of the canonical point ``x`` (the caller warped it)."""
        values: dict[str, Tensor] = {}
        if pos is None:
            x, values = self.canonical(x, cond)
            pos = self.encoder(x)
        parts = [pos]
        if cond.spatial is not None:
            features, spatial_values = cond.spatial(x, pos)
            parts.append(features)
            values = {**values, **spatial_values}
        if cond.vector is not None:
            parts.append(cond.vector.to(pos.dtype).expand(x.shape[0], -1))
        parts += self.density_features(frame, pos)
        h = self.sigma_net(torch.cat(parts, dim=-1), cond.scales, cond.shifts)
        return trunc_exp(h[:, 0]), h[:, 1:], values

    def density_features(self, frame: Frame | None, pos: Tensor) -> list[Tensor]:
        """The ``density_inputs`` of the frame, one ``[N, dim]`` block each (variants gate them per point)."""
        return self._frame_features(self.density_inputs, frame, pos.shape[0], pos)

    def extras(self, pos: Tensor) -> dict[str, Tensor]:
        """Extra per-point channels of the field itself (``FieldOutput.extras``, next to the spatial
        conditioning's values); default: none."""
        return {}

    def density(self, x: Tensor, cond: Conditioning, frame: Frame | None = None) -> Tensor:
        return self._sigma_and_geometry(x, cond, frame)[0]

    def densities(
        self, x: Tensor, conds: Sequence[Conditioning], frames: Sequence[Frame | None] | None = None
    ) -> Tensor:
        """``[B, N]``; the positional encoding, which no condition changes unless it warps the points,
        is computed once."""
        frames = frames if frames is not None else [None] * len(conds)
        pos = None if any(c.warp is not None for c in conds) else self.encoder(x)
        if pos is not None and not torch.is_grad_enabled():
            # Without gradients (occupancy updates), each frame folded into the sigma net's weights
            # and its density row alone: no colour geometry, no per-point modulation passes.
            bound = [self.bind(c, f) for c, f in zip(conds, frames)]
            if all(isinstance(b, FrameHead) for b in bound):
                return torch.stack([b.density(x, pos) for b in bound])
        return torch.stack([self._sigma_and_geometry(x, c, f, pos)[0] for c, f in zip(conds, frames)])

    def bind(self, cond: Conditioning, frame: Frame | None = None) -> Callable[[Tensor, Tensor], FieldOutput]:
        """The field for one frame with the frame folded into the weights (:class:`FrameHead`); a
        warped condition moves every point, so it keeps the plain field."""
        if cond.warp is not None or any(s.dim() != 1 for s in (*cond.scales, *cond.shifts)):
            return super().bind(cond, frame)
        return FrameHead(self, cond, frame)

    def forward(self, x: Tensor, d: Tensor, cond: Conditioning, frame: Frame | None = None) -> FieldOutput:
        x, warp_values = self.canonical(x, cond)
        pos = self.encoder(x)
        sigma, geometry, values = self._sigma_and_geometry(x, cond, frame, pos)
        values = {**warp_values, **values}
        parts = [self.dir_encoder(d).to(geometry.dtype), geometry]
        parts += self._frame_features(self.color_inputs, frame, x.shape[0], geometry)
        rgb = torch.sigmoid(self.color_net(torch.cat(parts, dim=-1)))
        return FieldOutput(sigma=sigma, rgb=rgb, extras={**values, **self.extras(pos)})


class FrameHead:
    """A :class:`HeadField` for one frame: ``(x [N, 3], d [N, 3]) -> FieldOutput`` without gradients.

    What the frame fixes is folded into the weights once, instead of being redone for every point:
    the M-AGLO modulation ``(W h + b)(1 + s) + t`` becomes the layer ``(1 + s) W``, ``(1 + s) b + t``;
    the columns of the sigma net's first layer that read the GLO vector and the frame's density
    inputs, and those of the colour net's first layer that read its colour inputs, become biases.
    The same function as ``field(x, d, cond, frame)`` up to float rounding (no ``extras``).
    """

    def __init__(self, field: HeadField, cond: Conditioning, frame: Frame | None) -> None:
        self.encoder, self.dir_encoder, self.spatial = field.encoder, field.dir_encoder, cond.spatial
        first = field.sigma_net.layers[0].weight
        like = first.detach()
        point_dim = field.encoder.output_dim + field.cond_spec.spatial_dim  # columns that vary per point
        constant = [cond.vector] if cond.vector is not None else []
        constant += [inp(frame) for inp in field.density_inputs]
        self.sigma = _linear_stack(field.sigma_net.layers, point_dim, constant, like)
        for i, (scale, shift) in enumerate(zip(cond.scales, cond.shifts)):
            gain, shift = 1 + scale.detach().to(like), shift.detach().to(like)
            weight, bias = self.sigma[i]
            self.sigma[i] = (weight * gain[:, None], shift if bias is None else gain * bias + shift)
        sh_dim = field.dir_encoder.output_dim
        geo_dim = field.sigma_net.layers[-1].out_features - 1
        color = _linear_stack(field.color_net.layers, sh_dim + geo_dim, [inp(frame) for inp in field.color_inputs], like)
        weight, bias = color[0]
        # The colour net's first layer split by input: no [SH, geometry] concatenation per point.
        self.color_dir, self.color_geo, self.color_bias = weight[:, :sh_dim], weight[:, sh_dim:], bias
        self.color = color[1:]

    def _hidden(self, x: Tensor, pos: Tensor) -> Tensor:
        """The sigma net's last hidden layer at points ``x`` whose encoding is ``pos``."""
        h = pos
        if self.spatial is not None:
            h = torch.cat([pos, self.spatial(x, pos)[0]], dim=-1)
        for weight, bias in self.sigma[:-1]:
            h = F.relu(F.linear(h.to(weight.dtype), weight, bias), inplace=True)
        return h

    def density(self, x: Tensor, pos: Tensor | None = None) -> Tensor:
        """``[N]`` densities alone (``pos``: the encoding of ``x`` when several frames share it): the
        last layer computes its density row only, not the geometry feature the colour net reads."""
        h = self._hidden(x, self.encoder(x) if pos is None else pos)
        weight, bias = self.sigma[-1]
        logit = torch.mv(h, weight[0])  # a matrix-vector product: faster than a one-column matmul
        return torch.exp((logit if bias is None else logit + bias[0]).float())

    def __call__(self, x: Tensor, d: Tensor) -> FieldOutput:
        h = F.linear(self._hidden(x, self.encoder(x)), *self.sigma[-1])
        sigma, geometry = torch.exp(h[:, 0].float()), h[:, 1:]  # trunc_exp's forward
        h = F.linear(self.dir_encoder(d).to(geometry.dtype), self.color_dir)
        h = h + F.linear(geometry, self.color_geo, self.color_bias)
        for weight, bias in self.color:
            h = F.linear(F.relu(h), weight, bias)
        return FieldOutput(sigma=sigma, rgb=torch.sigmoid(h))


def _linear_stack(
    layers: nn.ModuleList, point_dim: int, constant: Sequence[Tensor], like: Tensor
) -> list[tuple[Tensor, Tensor | None]]:
    """``(weight, bias)`` of each layer of an MLP whose input is ``[per-point features (point_dim
    wide), constant]``: the constant part enters the first layer's bias."""
    stack: list[tuple[Tensor, Tensor | None]] = []
    for i, layer in enumerate(layers):
        weight = layer.weight.detach()
        bias = layer.bias.detach() if layer.bias is not None else None
        if i == 0:
            if constant:
                folded = weight[:, point_dim:] @ torch.cat([c.reshape(-1).to(like) for c in constant])
                bias = folded if bias is None else bias + folded
            weight = weight[:, :point_dim]
        stack.append((weight, bias))
    return stack
