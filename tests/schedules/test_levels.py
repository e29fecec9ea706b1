import torch

from talker.encoders import HashGrid
from talker.schedules import AllLevels, ProgressiveLevels


def test_progressive_levels_follow_the_paper() -> None:
    schedule = ProgressiveLevels(start_levels=4, every=5000)
    assert [schedule.mask_at(s, 16).sum().item() for s in (0, 4999, 5000, 25_000, 10**6)] == [4, 4, 5, 9, 16]


def test_schedule_writes_the_encoder_buffer() -> None:
    grid = HashGrid(3, 8, 2, 4, 10, 64)
    ProgressiveLevels(2, 10).apply(grid, paper_step=25)
    assert grid.level_mask.tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    assert "level_mask" in grid.state_dict()
    AllLevels().apply(grid, paper_step=0)
    assert torch.all(grid.level_mask == 1)
