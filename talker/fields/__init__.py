"""Radiance fields: the contract (base.py) and the head field."""

from talker.fields.base import Field, FieldOutput
from talker.fields.head import HeadField
from talker.fields.mlp import MLP, trunc_exp

__all__ = ["MLP", "Field", "FieldOutput", "HeadField", "trunc_exp"]
