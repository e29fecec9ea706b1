"""Training losses."""

from talker.losses.perceptual import LPIPSLoss, PerceptualWeightsMissing, lpips_weights_file
from talker.losses.photometric import MSE, PhotometricLoss, mse, opacity_entropy

__all__ = ["MSE", "LPIPSLoss", "PerceptualWeightsMissing", "PhotometricLoss", "lpips_weights_file", "mse", "opacity_entropy"]
