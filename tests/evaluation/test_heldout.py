"""The mouth strip of the held-out evaluation: columns from closed to open mouths."""

import torch

from talker.evaluation import mouth_strip, mouth_tiles
from talker.metrics import EvalFrame


def frame(opening: float, value: float) -> EvalFrame:
    lms = torch.zeros(68, 2)
    lms[:, 0] = torch.linspace(10, 30, 68)
    lms[:, 1] = 20
    lms[[65, 66, 67], 1] += opening  # lower inner lip moves down
    image = torch.full((48, 48, 3), value)
    return EvalFrame(0, image, image, lms)


def test_mouth_strip_orders_columns_from_closed_to_open() -> None:
    columns = [(o, mouth_tiles(frame(o, v), size=8)) for o, v in ((3.0, 0.9), (0.0, 0.1), (1.5, 0.5))]
    strip = mouth_strip(columns, count=3)
    assert strip.shape == (16, 24, 3)
    means = [strip[:, i * 8 : (i + 1) * 8].mean() for i in range(3)]
    assert means == sorted(means)  # darkest (closed) first
