"""TensorBoard panels of the validation renders."""

import numpy as np
import torch

from talker.callbacks.images import panel


def test_panel_layout() -> None:
    pred, target = torch.zeros(4, 5, 3), torch.ones(4, 5, 3)
    out = panel(pred, target, depth=torch.ones(4, 5), opacity=torch.ones(4, 5))
    assert out.shape == (4, 25, 3)
    assert torch.all(out[:, 10:15] == 1)  # error x4, clamped
    assert np.isclose(float(out[:, 5:10].mean()), 1.0)
