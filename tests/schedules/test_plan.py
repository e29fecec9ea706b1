"""The stage plan: the one conversion of paper steps into real steps, and the stage boundaries."""

from __future__ import annotations

import pytest

from talker.config import compose_config
from talker.schedules import StagePlan


def test_stages_and_their_spans_follow_the_scale() -> None:
    plan = StagePlan(head_steps=240_000, lips_start=200_000, torso_steps=100_000, scale=0.01)
    assert plan.stages == ("head", "lips", "torso")
    assert [plan.stage(s) for s in (0, 1999, 2000, 2399, 2400, 3399)] == ["head", "head", "lips", "lips", "torso", "torso"]
    assert (plan.span("head").end, plan.span("lips").start, plan.span("torso").start, plan.end) == (2000, 2000, 2400, 3400)
    assert plan.paper(2000) == 200_000


def test_switching_the_lips_off_keeps_its_start_for_later() -> None:
    plan = StagePlan(head_steps=240_000, lips_start=200_000, torso_steps=0, scale=0.01, lips=False)
    assert plan.stages == ("head",) and plan.head_stage_end == 2400 and plan.stage(2100) == "head"
    with pytest.raises(KeyError, match="no lips stage"):
        plan.span("lips")


def test_a_stage_is_never_shorter_than_one_step() -> None:
    plan = StagePlan(head_steps=4000, lips_start=2000, torso_steps=100, scale=0.0001)
    assert (plan.real(2000), plan.real(4000), plan.end) == (1, 1, 1)


def test_trainer_steps_come_from_the_plan() -> None:
    cfg = compose_config(["schedule.scale=0.0003", "schedule.torso_steps=7000"])
    plan = StagePlan(cfg.schedule.head_steps, cfg.schedule.lips_start, cfg.schedule.torso_steps, cfg.schedule.scale)
    assert cfg.trainer.max_steps == plan.end == round((240_000 + 7000) * 0.0003)


@pytest.mark.parametrize("system", ["r2talker", "rad_nerf", "er_nerf"])
def test_a_head_budget_gives_every_system_the_same_head_steps_in_its_own_shape(system: str) -> None:
    """Papers train for 125K-250K steps; ``schedule.head_budget`` shortens each to the same real count."""
    cfg = compose_config([f"system={system}", "schedule.head_budget=2400", "schedule.torso_steps=0", "schedule.lips=false"])
    plan = StagePlan(cfg.schedule.head_steps, cfg.schedule.lips_start, 0, cfg.schedule.scale, lips=False)
    assert plan.head_stage_end == cfg.trainer.max_steps == 2400
    assert plan.paper(2400) == pytest.approx(cfg.schedule.head_steps)  # the whole paper schedule, compressed
    assert compose_config([f"system={system}"]).schedule.scale == 1.0  # no budget: the paper's length
