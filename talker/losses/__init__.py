"""Training losses."""

from talker.losses.perceptual import LPIPSLoss, PerceptualWeightsMissing, lpips_weights_file
from talker.losses.photometric import mse, opacity_entropy

__all__ = ["LPIPSLoss", "PerceptualWeightsMissing", "lpips_weights_file", "mse", "opacity_entropy"]
