"""Non-causal WaveNet stack over whole sequences: gated dilated 1D convolutions with a conditioning input.

Shapes follow ``torch.nn.Conv1d``: ``[B, C, T]``, with a ``[B, 1, T]`` mask of valid frames (1) so that
batches of unequal sequences never leak padding into the result.

    >>> net = WaveNet(channels=32, cond_channels=8, dilations=(1, 2, 4))
    >>> net(torch.randn(2, 32, 50), torch.randn(2, 8, 50), torch.ones(2, 1, 50)).shape
    torch.Size([2, 32, 50])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class WaveNet(nn.Module):
    """Residual gated dilated convolutions (WaveNet / Glow-TTS ``WN``); returns the sum of the skips.

    Args:
        channels: width of the residual stream.
        cond_channels: width of the conditioning sequence added inside every gate (0: none).
        kernel_size: odd kernel of the dilated convolutions.
        dilations: one layer per entry (e.g. ``(1, 2, 4, 8) * 2``); the receptive field is
            ``1 + (kernel_size - 1) * sum(dilations)`` frames.
        dropout: on the gated activations.
    """

    def __init__(
        self,
        channels: int,
        cond_channels: int = 0,
        kernel_size: int = 3,
        dilations: Sequence[int] = (1, 2, 4, 8, 1, 2, 4, 8),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (centred, non-causal), got {kernel_size}")
        self.channels = channels
        self.dilated = nn.ModuleList(
            nn.Conv1d(channels, 2 * channels, kernel_size, dilation=d, padding=d * (kernel_size - 1) // 2) for d in dilations
        )
        self.cond = nn.Conv1d(cond_channels, 2 * channels * len(dilations), 1) if cond_channels else None
        self.res_skip = nn.ModuleList(
            nn.Conv1d(channels, 2 * channels if i < len(dilations) - 1 else channels, 1) for i in range(len(dilations))
        )
        self.dropout = nn.Dropout(dropout)

    @property
    def receptive_field(self) -> int:
        return 1 + sum((conv.kernel_size[0] - 1) * conv.dilation[0] for conv in self.dilated)

    def forward(self, x: Tensor, cond: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        """``x [B, C, T]``, ``cond [B, Cc, T]``, ``mask [B, 1, T]`` -> ``[B, C, T]``."""
        mask = torch.ones_like(x[:, :1]) if mask is None else mask
        gates = self.cond(cond).chunk(len(self.dilated), dim=1) if self.cond is not None else [0.0] * len(self.dilated)
        skip = torch.zeros_like(x)
        for i, (dilated, res_skip) in enumerate(zip(self.dilated, self.res_skip)):
            h = dilated(x) + gates[i]
            a, b = h.chunk(2, dim=1)
            out = res_skip(self.dropout(torch.tanh(a) * torch.sigmoid(b)))
            if i < len(self.dilated) - 1:
                res, s = out.chunk(2, dim=1)
                x = (x + res) * mask
                skip = skip + s
            else:
                skip = skip + out
        return skip * mask
