"""Pretrained files: one registry (:mod:`talker.weights.files`), downloads that never leave a partial
file (:mod:`talker.weights.download`), and ``python -m talker.weights list | fetch``."""

from talker.weights.download import DownloadError
from talker.weights.files import (
    FACE_LANDMARKER,
    FID_INCEPTION,
    HUBERT,
    LPIPS_ALEXNET,
    REGISTRY,
    SYNCNET_V2,
    WAV2VEC2,
    HubModel,
    WeightsFile,
    WeightsUnavailable,
    hf_hub_cache,
    models_dir,
    offline,
    offline_reason,
    torch_hub_checkpoints,
)

__all__ = [
    "FACE_LANDMARKER", "FID_INCEPTION", "HUBERT", "LPIPS_ALEXNET", "REGISTRY", "SYNCNET_V2", "WAV2VEC2",
    "DownloadError", "HubModel", "WeightsFile", "WeightsUnavailable", "hf_hub_cache", "models_dir", "offline",
    "offline_reason", "torch_hub_checkpoints",
]
