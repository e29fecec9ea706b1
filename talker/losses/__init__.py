"""Training losses."""

from talker.losses.photometric import mse, opacity_entropy

__all__ = ["mse", "opacity_entropy"]
