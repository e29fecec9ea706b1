"""Network building blocks shared by fields, conditioning strategies and baselines (no talker imports).

Kept apart from ``talker.fields`` and ``talker.conditioning`` so that both can use them without
importing each other.
"""

from talker.nn.mlp import MLP, trunc_exp

__all__ = ["MLP", "trunc_exp"]
