"""Learning-rate schedules: R2-Talker's step decay and RAD-NeRF's / ER-NeRF's exponential decay."""

from __future__ import annotations

import pytest

from talker.schedules import ExponentialDecay, StagePlan, StepDecay

# RAD-NeRF's runs: head 200K steps, lips fine-tuning to 250K, torso 200K (here at scale 0.01).
RAD = StagePlan(head_steps=250_000, lips_start=200_000, torso_steps=200_000, scale=0.01)


def test_exponential_decay_follows_the_reference_runs() -> None:
    decay = ExponentialDecay(head=0.1, lips=0.05, torso=0.1)
    assert decay.factor(0, "head", RAD) == 1.0
    assert decay.factor(1000, "head", RAD) == pytest.approx(0.1 ** 0.5)
    # The lips run resumes the step count with a steeper decay: 0.05 ** (200K / 250K) at its start.
    assert decay.factor(2000, "lips", RAD) == pytest.approx(0.05 ** 0.8)
    assert decay.factor(2499, "lips", RAD) == pytest.approx(0.05 ** (2499 / 2500))
    # The torso is a fresh run: 1 at its start, 0.1 at its end.
    assert decay.factor(2500, "torso", RAD) == 1.0
    assert decay.factor(2500 + 2000, "torso", RAD) == pytest.approx(0.1)


def test_exponential_decay_without_lips_stage_spans_the_whole_head() -> None:
    plan = StagePlan(head_steps=100_000, lips_start=None, torso_steps=0, scale=0.001)
    assert ExponentialDecay(head=0.5).factor(50, "head", plan) == pytest.approx(0.5 ** 0.5)


def test_step_decay_drops_at_milestones_and_resets_for_lips() -> None:
    plan = StagePlan(head_steps=240_000, lips_start=200_000, torso_steps=0, scale=0.01)
    factors = [StepDecay().factor(s, "lips" if s >= 2000 else "head", plan) for s in (0, 1499, 1500, 1800, 2000)]
    assert factors == pytest.approx([1, 1, 0.1, 0.01, 1])
