import torch

from talker.rendering import OccupancyGrid


def blob(centre: tuple[float, float, float], radius: float = 0.3):
    c = torch.tensor(centre)
    return lambda x: 10.0 * ((x - c).norm(dim=-1) < radius).float()


def occupied_at(grid: OccupancyGrid, point: tuple[float, float, float]) -> bool:
    return bool(grid.query(torch.tensor([point]))[0])


def test_cell_occupied_under_one_condition_only_is_kept() -> None:
    # Three conditions (e.g. mouth closed / half / open); only the last fills the lower blob.
    conditions = [blob((0.0, -0.5, 0.0)), blob((0.0, -0.5, 0.0)), blob((0.0, 0.5, 0.0))]
    grid = OccupancyGrid(bound=1.0, resolution=16, update_fraction=1.0)
    grid.update(conditions)
    assert occupied_at(grid, (0.0, -0.5, 0.0))
    assert occupied_at(grid, (0.0, 0.5, 0.0))  # occupied under one of three conditions: kept
    assert not occupied_at(grid, (0.7, 0.7, 0.7))  # empty under every condition: skipped


def test_single_condition_grid_would_prune_it() -> None:
    grid = OccupancyGrid(bound=1.0, resolution=16, update_fraction=1.0)
    grid.update([blob((0.0, -0.5, 0.0))])
    assert not occupied_at(grid, (0.0, 0.5, 0.0))


def test_decay_forgets_and_state_is_in_buffers() -> None:
    grid = OccupancyGrid(bound=1.0, resolution=8, decay=0.5, update_fraction=1.0)
    grid.update([blob((0.0, 0.0, 0.0))])
    peak = grid.density.max().item()
    grid.update([lambda x: torch.zeros(x.shape[0])])
    assert grid.density.max().item() == peak * 0.5
    state = grid.state_dict()
    assert {"density", "occupied", "updates"} <= set(state)
    fresh = OccupancyGrid(bound=1.0, resolution=8)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.occupied, grid.occupied)


def test_empty_field_keeps_everything() -> None:
    grid = OccupancyGrid(bound=1.0, resolution=8, update_fraction=1.0)
    grid.update([lambda x: torch.zeros(x.shape[0])])
    assert grid.occupancy_ratio == 1.0
