"""Conditioning strategies: the ablation axis (see base.py for the contract)."""

from talker.conditioning.base import Conditioning, ConditioningSpec, ConditioningStrategy, Fusion
from talker.conditioning.fusion import AffineFusion, ConcatFusion
from talker.conditioning.landmark_hash import LandmarkHash

__all__ = [
    "AffineFusion",
    "ConcatFusion",
    "Conditioning",
    "ConditioningSpec",
    "ConditioningStrategy",
    "Fusion",
    "LandmarkHash",
]
