"""Raw talking-head video -> a dataset in the AD-NeRF / RAD-NeRF / R2-Talker layout (talker.data.layout)."""

from talker.preprocess.pipeline import STEPS, Options, preprocess
from talker.preprocess.video import PreprocessError

__all__ = ["STEPS", "Options", "PreprocessError", "preprocess"]
