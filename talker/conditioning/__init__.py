"""Conditioning strategies: the ablation axis (see base.py for the contract)."""

from talker.conditioning.audio_spatial import AmbientFusion, AudioCode, AudioSpatial
from talker.conditioning.base import Conditioning, ConditioningSpec, ConditioningStrategy, Fusion
from talker.conditioning.fusion import AffineFusion, ConcatFusion
from talker.conditioning.glo_concat import GloConcat, LandmarkSpatial
from talker.conditioning.landmark_hash import LandmarkHash
from talker.conditioning.penalty import ray_sum_penalty
from talker.conditioning.temporal import AttentionSmoothing, WindowNet

__all__ = [
    "AffineFusion",
    "AmbientFusion",
    "AttentionSmoothing",
    "AudioCode",
    "AudioSpatial",
    "ConcatFusion",
    "Conditioning",
    "ConditioningSpec",
    "ConditioningStrategy",
    "Fusion",
    "GloConcat",
    "LandmarkHash",
    "LandmarkSpatial",
    "WindowNet",
    "ray_sum_penalty",
]
