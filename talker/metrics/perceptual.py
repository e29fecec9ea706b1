"""LPIPS (Zhang et al. 2018) with the lpips package and its AlexNet trunk, as the talking-head papers use.

The linear calibration layers ship inside the lpips wheel; the AlexNet trunk is torchvision's
ImageNet checkpoint ``alexnet-owt-7be5be79.pth``, from the hub cache (downloaded there on first use)
or a configured file.
"""

from __future__ import annotations

import warnings

import torch

from talker.metrics.base import EvalContext, EvalFrame, FrameMeanMetric, MetricUnavailable, crop, region_key, regions, resolve_device
from talker.metrics.weights import find_weights, hub_cache_with
from talker.weights import LPIPS_ALEXNET

ALEXNET_FILE = LPIPS_ALEXNET.file_name
# AlexNet's five feature stages need about 32 pixels to leave a non-empty last map.
MIN_SIDE = 32


class LPIPS(FrameMeanMetric):
    """Mean over frames of per-frame LPIPS (AlexNet, version 0.1), inputs scaled to [-1, 1].

    Args:
        regions: which of ``full``, ``face``, ``mouth`` to score (crops under 32 px are skipped).
        weights: AlexNet checkpoint; None: ``$TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth``
            (downloaded on first use unless offline).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
    """

    name = "lpips"

    def __init__(self, regions: tuple[str, ...] = ("full",), weights: str | None = None, device: str = "auto") -> None:
        self.regions = tuple("" if r == "full" else r for r in regions)
        self.weights = weights
        self.device = resolve_device(device)
        super().__init__()
        self.net: torch.nn.Module | None = None

    def prepare(self, context: EvalContext) -> None:
        if self.net is None:
            self.net = load_lpips(self.weights).to(self.device)

    @torch.no_grad()
    def update(self, frame: EvalFrame) -> dict[str, float]:
        out = {}
        boxes = regions(frame)
        for region in self.regions:
            if boxes.get(region) is None:
                continue
            pred, target = crop(frame.pred, boxes[region]), crop(frame.target, boxes[region])
            if min(pred.shape[:2]) < MIN_SIDE:
                continue
            key = region_key(self.name, region)
            out[key] = float(self.net(to_lpips_input(pred, self.device), to_lpips_input(target, self.device)).item())
            self.values[key].append(out[key])
        return out


def to_lpips_input(image: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``[H, W, 3]`` in [0, 1] -> ``[1, 3, H, W]`` in [-1, 1]."""
    return (image.clamp(0, 1).float().permute(2, 0, 1).unsqueeze(0) * 2 - 1).to(device)


def load_lpips(weights: str | None = None) -> torch.nn.Module:
    """``lpips.LPIPS(net="alex")`` with its trunk from ``weights`` or the cache (see :mod:`talker.weights`)."""
    try:
        import lpips
    except ImportError as exc:  # torchvision missing or broken on this machine
        raise MetricUnavailable(f"the lpips package does not import ({exc}); pip install 'talker[metrics]'") from exc
    path = find_weights(LPIPS_ALEXNET, weights)
    try:
        with hub_cache_with(ALEXNET_FILE, path), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*(pretrained|weight enum).*", category=UserWarning)  # lpips' old call
            net = lpips.LPIPS(net="alex", version="0.1", verbose=False)
    except Exception as exc:  # a corrupt or wrong file: say so instead of crashing the evaluation
        raise MetricUnavailable(f"LPIPS AlexNet weights at {path} do not load: {exc}") from exc
    return net.eval()
