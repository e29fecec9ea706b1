"""Frechet Inception Distance (Heusel et al. 2017) between the rendered and the ground-truth frame sets.

Features are pytorch-fid's: the FID Inception-v3 (TensorFlow port, ``pt_inception-2015-12-05-6726825d.pth``)
pool3 activations (2048-d) of each frame bilinearly resized to 299 x 299; the distance is
pytorch-fid's ``calculate_frechet_distance`` of the two Gaussians. Scoring a folder of PNGs with
``python -m pytorch_fid`` gives the same number.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from talker.metrics.base import EvalContext, EvalFrame, Metric, MetricUnavailable, resolve_device
from talker.metrics.weights import find_weights, hub_cache_with
from talker.weights import FID_INCEPTION

INCEPTION_FILE = FID_INCEPTION.file_name


class FID(Metric):
    """FID of the whole sequence (one value, no per-frame entries).

    Args:
        dims: pool3 (2048, the standard), or 768 / 192 / 64 for pytorch-fid's earlier blocks.
        batch_size: frames per Inception forward pass.
        weights: FID Inception checkpoint; None: ``$TORCH_HOME/hub/checkpoints/pt_inception-...pth``
            (downloaded on first use unless offline).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
    """

    name = "fid"

    def __init__(self, dims: int = 2048, batch_size: int = 16, weights: str | None = None, device: str = "auto") -> None:
        self.dims, self.batch_size, self.weights = dims, batch_size, weights
        self.device = resolve_device(device)
        self.net: torch.nn.Module | None = None
        self.reset()

    def reset(self) -> None:
        self.pending: dict[str, list[torch.Tensor]] = {"pred": [], "target": []}
        self.features: dict[str, list[np.ndarray]] = {"pred": [], "target": []}

    def prepare(self, context: EvalContext) -> None:
        if self.net is None:
            self.net = load_fid_inception(self.dims, self.weights).to(self.device)

    def update(self, frame: EvalFrame) -> dict[str, float]:
        for key, image in (("pred", frame.pred), ("target", frame.target)):
            self.pending[key].append(image.clamp(0, 1).float().permute(2, 0, 1))
            if len(self.pending[key]) >= self.batch_size:
                self._flush(key)
        return {}

    @torch.no_grad()
    def _flush(self, key: str) -> None:
        if self.pending[key]:
            batch = torch.stack(self.pending[key]).to(self.device)
            out = self.net(batch)[0]
            if out.shape[2:] != (1, 1):  # blocks before pool3: spatial average, as pytorch-fid does
                out = F.adaptive_avg_pool2d(out, (1, 1))
            self.features[key].append(out.squeeze(3).squeeze(2).cpu().double().numpy())
            self.pending[key] = []

    def activations(self) -> tuple[np.ndarray, np.ndarray]:
        """``[N, dims]`` Inception activations of the rendered and of the ground-truth frames so far."""
        for key in self.pending:
            self._flush(key)
        return tuple(np.concatenate(self.features[k]) if self.features[k] else np.zeros((0, self.dims)) for k in ("pred", "target"))

    def compute(self) -> dict[str, float]:
        from pytorch_fid.fid_score import calculate_frechet_distance

        pred, target = self.activations()
        if len(pred) < 2 or len(target) < 2:
            raise MetricUnavailable(f"needs at least 2 frames per set, got {len(pred)}")
        stats = [(x.mean(axis=0), np.cov(x, rowvar=False)) for x in (pred, target)]
        return {self.name: float(calculate_frechet_distance(*stats[0], *stats[1]))}


def load_fid_inception(dims: int = 2048, weights: str | None = None) -> torch.nn.Module:
    """pytorch-fid's ``InceptionV3`` with the FID weights from ``weights`` or the cache (see :mod:`talker.weights`)."""
    try:
        from pytorch_fid.inception import InceptionV3
    except ImportError as exc:
        raise MetricUnavailable(f"pytorch-fid does not import ({exc}); pip install 'talker[metrics]'") from exc
    if dims not in InceptionV3.BLOCK_INDEX_BY_DIM:
        raise ValueError(f"fid.dims={dims}: choose one of {sorted(InceptionV3.BLOCK_INDEX_BY_DIM)}")
    path = find_weights(FID_INCEPTION, weights)
    try:
        with hub_cache_with(INCEPTION_FILE, path):
            net = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[dims]])
    except Exception as exc:  # a corrupt or wrong file: say so instead of crashing the evaluation
        raise MetricUnavailable(f"FID Inception weights at {path} do not load: {exc}") from exc
    return net.eval()
