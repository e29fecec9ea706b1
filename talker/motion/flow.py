"""Conditional normalizing flow over latent sequences: affine coupling layers with channel flips.

Direction convention: :meth:`CouplingFlow.forward` maps a latent ``z`` to the base noise ``eps``
(density evaluation), ``reverse=True`` maps noise to a latent (sampling). Both return the log
determinant of the map they apply, summed per sequence over valid frames.

    >>> flow = CouplingFlow(channels=16, cond_channels=8, hidden=32, num_layers=2)
    >>> z, a, m = torch.randn(2, 16, 20), torch.randn(2, 8, 20), torch.ones(2, 1, 20)
    >>> eps, logdet = flow(z, a, m)
    >>> back, _ = flow(eps, a, m, reverse=True)
    >>> bool(torch.allclose(back, z, atol=1e-5))
    True
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from talker.motion.wavenet import WaveNet


class AffineCoupling(nn.Module):
    """Half the channels pass unchanged and set a shift and log scale for the other half
    (WaveNet over the first half and the condition; the last layer starts at zero, so a new flow is
    the identity)."""

    def __init__(self, channels: int, cond_channels: int, hidden: int, dilations=(1, 2, 4)) -> None:
        super().__init__()
        if channels % 2:
            raise ValueError(f"coupling needs an even number of channels, got {channels}")
        self.half = channels // 2
        self.pre = nn.Conv1d(self.half, hidden, 1)
        self.net = WaveNet(hidden, cond_channels, dilations=dilations)
        self.post = nn.Conv1d(hidden, 2 * self.half, 1)
        nn.init.zeros_(self.post.weight)
        nn.init.zeros_(self.post.bias)

    def forward(self, x: Tensor, cond: Tensor, mask: Tensor, reverse: bool = False) -> tuple[Tensor, Tensor]:
        x0, x1 = x[:, : self.half], x[:, self.half :]
        shift, log_scale = self.post(self.net(self.pre(x0) * mask, cond, mask)).chunk(2, dim=1)
        log_scale = torch.tanh(log_scale) * 2.0  # bounded scales keep early training stable
        if not reverse:
            x1 = (x1 - shift) * torch.exp(-log_scale) * mask
            logdet = -(log_scale * mask).sum(dim=(1, 2))
        else:
            x1 = (shift + x1 * torch.exp(log_scale)) * mask
            logdet = (log_scale * mask).sum(dim=(1, 2))
        return torch.cat([x0, x1], dim=1), logdet


class CouplingFlow(nn.Module):
    """``num_layers`` affine couplings, the channels flipped between them (so every channel is transformed)."""

    def __init__(self, channels: int, cond_channels: int, hidden: int = 64, num_layers: int = 4) -> None:
        super().__init__()
        self.layers = nn.ModuleList(AffineCoupling(channels, cond_channels, hidden) for _ in range(num_layers))

    def forward(self, x: Tensor, cond: Tensor, mask: Tensor, reverse: bool = False) -> tuple[Tensor, Tensor]:
        logdet = x.new_zeros(x.shape[0])
        layers = self.layers if not reverse else reversed(self.layers)
        for layer in layers:
            if reverse:
                x = torch.flip(x, dims=[1])
            x, ld = layer(x, cond, mask, reverse=reverse)
            if not reverse:
                x = torch.flip(x, dims=[1])
            logdet = logdet + ld
        return x, logdet

    def log_prob(self, z: Tensor, cond: Tensor, mask: Tensor) -> Tensor:
        """``log p(z | cond)`` per sequence ``[B]``, summed over channels and valid frames."""
        eps, logdet = self(z, cond, mask)
        return (standard_normal_log_prob(eps) * mask).sum(dim=(1, 2)) + logdet


def standard_normal_log_prob(x: Tensor) -> Tensor:
    return -0.5 * (x**2 + math.log(2 * math.pi))
