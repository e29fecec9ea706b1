"""Sync expert: does a window of mouth landmarks belong with a window of audio?

Two encoders (mouth landmarks, audio rows; ``window`` frames each) map to non-negative embeddings;
their cosine similarity, in [0, 1], is the probability of "in sync", trained with binary cross-entropy
on synced pairs (label 1) and pairs whose audio is shifted by at least ``window`` frames (label 0),
as Wav2Lip's SyncNet expert and GeneFace's landmark sync expert. Frozen, it scores generated
landmarks: ``-log p(sync)`` is the generator's sync loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MOUTH = slice(48, 68)  # 68-point scheme: outer and inner lips


def _encoder(in_dim: int, hidden: int, window: int, embed: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv1d(in_dim, hidden, 3, padding=1),
        nn.LeakyReLU(0.2),
        nn.Conv1d(hidden, hidden, 3, padding=1),
        nn.LeakyReLU(0.2),
        nn.Flatten(),
        nn.Linear(hidden * window, embed),
        nn.ReLU(),
    )


class SyncExpert(nn.Module):
    """``p(sync)`` of mouth-landmark windows ``[B, W, 20 * 3]`` and audio windows ``[B, W, A]``."""

    def __init__(self, audio_dim: int, window: int = 5, hidden: int = 128, embed: int = 64, mouth_dim: int = 20 * 3) -> None:
        super().__init__()
        self.window = window
        self.landmark_net = _encoder(mouth_dim, hidden, window, embed)
        self.audio_net = _encoder(audio_dim, hidden, window, embed)

    def forward(self, mouth: Tensor, audio: Tensor) -> Tensor:
        e_l = self.landmark_net(mouth.transpose(1, 2))
        e_a = self.audio_net(audio.transpose(1, 2))
        return F.cosine_similarity(e_l, e_a, dim=-1, eps=1e-6).clamp(1e-6, 1 - 1e-6)

    def bce(self, mouth: Tensor, audio: Tensor, labels: Tensor) -> Tensor:
        return F.binary_cross_entropy(self(mouth, audio), labels)


def mouth_of(landmarks: Tensor) -> Tensor:
    """``[..., 68 * 3]`` flattened landmarks -> ``[..., 20 * 3]`` mouth coordinates."""
    return landmarks.unflatten(-1, (68, 3))[..., MOUTH, :].flatten(-2)


def windows_at(seq: Tensor, starts: Tensor, window: int) -> Tensor:
    """``seq [B, T, X]``, ``starts [B, K]`` -> ``[B * K, window, X]`` (windows ``starts ... starts + window - 1``)."""
    index = starts[..., None] + torch.arange(window, device=seq.device)  # [B, K, W]
    b = torch.arange(seq.shape[0], device=seq.device)[:, None, None].expand_as(index)
    return seq[b, index].flatten(0, 1)


def pair_starts(
    length: int, batch: int, count: int, window: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Window starts ``[B, K]`` and the starts of audio shifted by ``window ... length - window`` frames
    (wrapping around inside the sequence, so a shifted window never overlaps its own)."""
    if length < 3 * window:
        raise ValueError(f"sequences of {length} frames are too short for sync windows of {window} (need {3 * window})")
    span = length - window + 1
    starts = torch.randint(0, span, (batch, count), generator=generator)
    shifts = torch.randint(window, span - window + 1, (batch, count), generator=generator)
    return starts, (starts + shifts) % span


def sync_accuracy(expert: SyncExpert, landmarks: Tensor, audio: Tensor, seed: int = 0, count: int = 256) -> dict[str, float]:
    """Accuracy of ``p > 0.5`` on synced and on shifted pairs drawn from one sequence ``[1, T, ...]``."""
    generator = torch.Generator().manual_seed(seed)
    starts, shifted = pair_starts(landmarks.shape[1], 1, count, expert.window, generator)
    starts, shifted = starts.to(landmarks.device), shifted.to(landmarks.device)
    mouth = windows_at(mouth_of(landmarks), starts, expert.window)
    p_sync = expert(mouth, windows_at(audio, starts, expert.window))
    p_shift = expert(mouth, windows_at(audio, shifted, expert.window))
    synced, shifted_acc = (p_sync > 0.5).float().mean().item(), (p_shift <= 0.5).float().mean().item()
    return {
        "sync_acc": 0.5 * (synced + shifted_acc),
        "sync_acc_synced": synced,
        "sync_acc_shifted": shifted_acc,
        "sync_p_synced": p_sync.mean().item(),
        "sync_p_shifted": p_shift.mean().item(),
    }
