"""benchmarks/condition_sensitivity.py's novelty of held-out mouths, on hand-made landmark tracks."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import pytest
import torch

from ..conftest import REPO

spec = importlib.util.spec_from_file_location("condition_sensitivity", REPO / "benchmarks" / "condition_sensitivity.py")
condition_sensitivity = importlib.util.module_from_spec(spec)
spec.loader.exec_module(condition_sensitivity)


def split(landmarks: torch.Tensor, aud_ids: list[int]) -> SimpleNamespace:
    return SimpleNamespace(landmarks=landmarks, aud_ids=aud_ids)


def track(openings: list[float]) -> torch.Tensor:
    """``[T, 68, 3]``: every point at 0 but the mouth's (48-67), moved along y by each frame's opening."""
    lms = torch.zeros(len(openings), 68, 3)
    lms[:, 48:68, 1] = torch.tensor(openings)[:, None]
    return lms


def test_held_out_mouths_that_repeat_training_mouths_are_not_new() -> None:
    lms = track([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.0, 0.1])  # frames 6, 7 repeat frames 0, 1
    novelty = condition_sensitivity.mouth_novelty(split(lms, [0, 1, 2, 3, 4, 5]), split(lms, [6, 7]))
    assert novelty["held_out_nn"] == 0.0
    # training frames 3 or more apart: 0.3 apart in y at 20 points
    assert novelty["train_nn"] == pytest.approx(0.3 * 20**0.5)


def test_a_new_mouth_is_as_far_as_its_nearest_training_mouth() -> None:
    lms = track([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.9])
    novelty = condition_sensitivity.mouth_novelty(split(lms, [0, 1, 2, 3, 4, 5]), split(lms, [6]))
    assert novelty["held_out_nn"] == pytest.approx(0.4 * 20**0.5)
    assert novelty["ratio"] == pytest.approx(0.4 / 0.3)
    # only the mouth counts: moving every other point changes nothing
    lms[:, :48] += torch.randn(7, 48, 3)
    again = condition_sensitivity.mouth_novelty(split(lms, [0, 1, 2, 3, 4, 5]), split(lms, [6]))
    assert again["held_out_nn"] == pytest.approx(novelty["held_out_nn"])
