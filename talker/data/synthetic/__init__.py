"""Synthetic talking-head generator (the embedded default dataset)."""

from talker.data.synthetic.generator import SyntheticClip

__all__ = ["SyntheticClip"]
