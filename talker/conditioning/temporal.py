"""The filter family of RAD-NeRF and GeneFace: a conv net over one frame's feature window, then
attention-weighted smoothing of the per-frame codes over neighbouring frames.

Example:
    >>> net = WindowNet(in_dim=80, out_dim=32, length=16)
    >>> codes = net(torch.randn(8, 16, 80))                  # 8 neighbouring frames
    >>> AttentionSmoothing(dim=32, window=8)(codes).shape   # one code for the centre frame
    torch.Size([32])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def _leaky() -> nn.Module:
    return nn.LeakyReLU(0.02)


class WindowNet(nn.Module):
    """``[B, length, in_dim] -> [B, out_dim]``: 1D convolutions along the window, then two FC layers.

    With ``stride=2`` each convolution halves the window (RAD-NeRF's AudioNet: 16 feature rows of
    one frame -> 1); with ``stride=1`` the length is kept (GeneFace's landmark net over a
    one-frame window). Whatever length is left is flattened into the FC layers.

    Args:
        in_dim: features per window row (29 DeepSpeech, 80 log-mel, 1024 HuBERT, 204 landmarks).
        out_dim: code width.
        length: rows per window.
        channels: output channels of the convolutions (one layer each).
        stride: 2 halves the window per layer, 1 keeps it.
        hidden_dim: the FC layer between the convolutions and the code.
        kaiming: He initialisation (GeneFace's landmark net here); False keeps PyTorch's default,
            as RAD-NeRF's and ER-NeRF's AudioNet (talker.conditioning.AudioCode).
    """

    def __init__(
        self, in_dim: int, out_dim: int, length: int = 16, channels: Sequence[int] = (32, 32, 64, 64),
        stride: int = 2, hidden_dim: int = 64, kaiming: bool = True,
    ) -> None:
        super().__init__()
        self.in_dim, self.out_dim, self.length = in_dim, out_dim, length
        layers: list[nn.Module] = []
        width, rows = in_dim, length
        for out in channels:
            # A one-row window sees only the centre tap of a 3-tap kernel: use that tap alone.
            kernel = 3 if rows > 1 else 1
            layers += [nn.Conv1d(width, out, kernel_size=kernel, stride=stride, padding=kernel // 2), _leaky()]
            width, rows = out, (rows - 1) // stride + 1
        self.convs = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Linear(width * rows, hidden_dim), _leaky(), nn.Linear(hidden_dim, out_dim))
        # He initialisation keeps the code's spread through six layers (PyTorch's default shrinks
        # it about 3x per layer, so codes of different frames would start nearly equal).
        for module in self.modules() if kaiming else ():
            if isinstance(module, (nn.Conv1d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, a=0.02, nonlinearity="leaky_relu")
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 3 or tuple(x.shape[1:]) != (self.length, self.in_dim):
            raise ValueError(f"WindowNet expects [B, {self.length}, {self.in_dim}] windows, got {tuple(x.shape)}")
        h = self.convs(x.transpose(1, 2))  # convolve along the window: [B, C, length]
        return self.fc(h.flatten(1))


class AttentionSmoothing(nn.Module):
    """``[window, dim] -> [dim]``: per-frame codes of neighbouring frames -> their attention-weighted sum
    (RAD-NeRF / AD-NeRF's AudioAttNet): a conv net reads the codes along the window, one linear layer
    turns the result into softmax weights over the frames."""

    def __init__(self, dim: int, window: int = 8, channels: Sequence[int] = (16, 8, 4, 2, 1)) -> None:
        super().__init__()
        self.dim, self.window = dim, window
        layers: list[nn.Module] = []
        width = dim
        for out in channels:
            layers += [nn.Conv1d(width, out, kernel_size=3, stride=1, padding=1), _leaky()]
            width = out
        self.convs = nn.Sequential(*layers)
        self.score = nn.Linear(window * width, window)

    def weights(self, codes: Tensor) -> Tensor:
        """``[window, dim] -> [window]`` softmax weights."""
        h = self.convs(codes.t().unsqueeze(0))  # [1, C, window]
        return torch.softmax(self.score(h.flatten(1)), dim=-1).squeeze(0)

    def forward(self, codes: Tensor) -> Tensor:
        if tuple(codes.shape) != (self.window, self.dim):
            raise ValueError(f"AttentionSmoothing expects [{self.window}, {self.dim}] codes, got {tuple(codes.shape)}")
        return self.weights(codes) @ codes
