"""Training losses."""

from talker.losses.perceptual import LPIPSLoss, PerceptualWeightsMissing, lpips_weights_file
from talker.losses.photometric import MSE, PhotometricLoss, mse, opacity_entropy
from talker.losses.regions import RegionWeightedMSE, attention_regularization, region_regularization

__all__ = [
    "MSE",
    "LPIPSLoss",
    "PerceptualWeightsMissing",
    "PhotometricLoss",
    "RegionWeightedMSE",
    "attention_regularization",
    "lpips_weights_file",
    "mse",
    "opacity_entropy",
    "region_regularization",
]
