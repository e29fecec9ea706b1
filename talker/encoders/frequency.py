"""NeRF positional (frequency) encoding."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class FrequencyEncoding(nn.Module):
    """``[..., D] -> [..., D * (1 + 2 * num_frequencies)]``: ``x, sin(2^k x), cos(2^k x)``.

    Example:
        >>> FrequencyEncoding(2, 4)(torch.zeros(3, 2)).shape
        torch.Size([3, 18])
    """

    def __init__(self, input_dim: int, num_frequencies: int) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.num_frequencies = num_frequencies
        self.register_buffer("bands", 2.0 ** torch.arange(num_frequencies, dtype=torch.float32), persistent=False)

    @property
    def output_dim(self) -> int:
        return self.input_dim * (1 + 2 * self.num_frequencies)

    def forward(self, x: Tensor) -> Tensor:
        scaled = (x.unsqueeze(-1) * self.bands.to(x.dtype)).flatten(-2)  # [..., D*F]
        return torch.cat([x, torch.sin(scaled), torch.cos(scaled)], dim=-1)
