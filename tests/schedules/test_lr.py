"""Learning-rate shapes of the stages: R2-Talker's step decay and RAD-NeRF's / ER-NeRF's exponential decay."""

from __future__ import annotations

import pytest

from talker.schedules import Constant, ExponentialDecay, StagePlan, StepDecay

# RAD-NeRF's runs: head 200K steps, lips fine-tuning to 250K, torso 200K (here at scale 0.01).
RAD = StagePlan(head_steps=250_000, lips_start=200_000, torso_steps=200_000, scale=0.01)


def test_exponential_decay_follows_the_reference_runs() -> None:
    head, lips, torso = ExponentialDecay(0.1), ExponentialDecay(0.05, from_run_start=True), ExponentialDecay(0.1)
    assert head.factor(0, RAD.span("head"), RAD) == 1.0
    assert head.factor(1000, RAD.span("head"), RAD) == pytest.approx(0.1 ** 0.5)
    # The lips run resumes the step count with a steeper decay: 0.05 ** (200K / 250K) at its start.
    assert lips.factor(2000, RAD.span("lips"), RAD) == pytest.approx(0.05 ** 0.8)
    assert lips.factor(2499, RAD.span("lips"), RAD) == pytest.approx(0.05 ** (2499 / 2500))
    # The torso is a fresh run: 1 at its start, 0.1 at its end.
    assert torso.factor(2500, RAD.span("torso"), RAD) == 1.0
    assert torso.factor(2500 + 2000, RAD.span("torso"), RAD) == pytest.approx(0.1)


def test_exponential_decay_without_lips_stage_spans_the_whole_head() -> None:
    plan = StagePlan(head_steps=100_000, lips_start=None, torso_steps=0, scale=0.001)
    assert ExponentialDecay(0.5).factor(50, plan.span("head"), plan) == pytest.approx(0.5 ** 0.5)


def test_step_decay_drops_at_milestones_and_lips_start_over() -> None:
    plan = StagePlan(head_steps=240_000, lips_start=200_000, torso_steps=0, scale=0.01)
    factors = [StepDecay().factor(s, plan.span("head"), plan) for s in (0, 1499, 1500, 1800)]
    assert factors == pytest.approx([1, 1, 0.1, 0.01])
    assert Constant().factor(2000, plan.span("lips"), plan) == 1.0


def test_step_decay_from_the_run_start_continues_the_heads_decay_into_the_lips_stage() -> None:
    """LokiTalk's LPIPS in the last 20 %: the lips stage from 192K keeps the head's rate (x0.01 after
    180K) instead of starting over; a later milestone still drops it."""
    plan = StagePlan(head_steps=240_000, lips_start=192_000, torso_steps=0, scale=0.01)
    head, lips = plan.span("head"), plan.span("lips")
    assert StepDecay().factor(lips.start - 1, head, plan) == pytest.approx(0.01)
    assert StepDecay(from_run_start=True).factor(lips.start, lips, plan) == pytest.approx(0.01)
    assert StepDecay().factor(lips.start, lips, plan) == 1.0  # counted from the stage's start: R2-Talker's reset
    late = StepDecay((150_000, 180_000, 220_000), from_run_start=True)
    assert [late.factor(s, lips, plan) for s in (2199, 2200)] == pytest.approx([0.01, 0.001])


def test_stretched_step_decay_repeats_the_head_shape_over_the_torso() -> None:
    plan = StagePlan(head_steps=240_000, lips_start=200_000, torso_steps=120_000, scale=0.01)
    span = plan.span("torso")  # real steps 2400..3600: milestones at 150K/240K and 180K/240K of it
    factors = [StepDecay(stretch=True).factor(span.start + s, span, plan) for s in (0, 749, 750, 900)]
    assert factors == pytest.approx([1, 1, 0.1, 0.01])
