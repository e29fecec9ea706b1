import math

import pytest
import torch

from talker.rendering import ConditionSweep, OccupancyGrid


def blob(centre: tuple[float, float, float], radius: float = 0.3, density: float = 10.0):
    c = torch.tensor(centre)
    return lambda x: density * ((x - c).norm(dim=-1) < radius).float()


def box(lo: tuple[float, float, float], hi: tuple[float, float, float], density: float = 10.0):
    """Density inside an axis-aligned box: aligned with grid cells, a probe anywhere in a cell is exact."""
    lo_t, hi_t = torch.tensor(lo), torch.tensor(hi)
    return lambda x: density * ((x >= lo_t) & (x < hi_t)).all(dim=-1).float()


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


def test_batched_density_fn_takes_the_max_over_its_conditions() -> None:
    closed, opened = blob((0.0, -0.5, 0.0)), blob((0.0, 0.5, 0.0))
    grid = OccupancyGrid(bound=1.0, resolution=16)
    grid.update(lambda x: torch.stack([closed(x), opened(x)]))  # [B, N]
    assert occupied_at(grid, (0.0, 0.5, 0.0)) and occupied_at(grid, (0.0, -0.5, 0.0))


def test_rare_condition_survives_sweeps_and_decay() -> None:
    """One condition in ten opens the "mouth" by a row of cells; updates see two conditions each,
    probe few cells at random and decay is strong. Sweeps keep every condition's latest density
    in the grid; RAD-NeRF's rule (one condition per update, decayed every update) lets it fade."""
    torch.manual_seed(0)
    closed = box((-0.25, -0.5, -0.25), (0.25, 0.0, 0.25))
    opened = box((-0.25, -0.5, -0.25), (0.25, 0.125, 0.25))  # one more row of cells, next to the closed mouth
    conditions = [closed] * 9 + [opened]
    rare, mouth = 9, (0.05, 0.06, 0.05)
    grid = OccupancyGrid(bound=1.0, resolution=16, decay=0.1, density_threshold=5.0, update_fraction=0.02)
    sweep = ConditionSweep(batch_size=2)
    visited_rare = False
    for _ in range(4 * sweep.batches_per_sweep(len(conditions))):  # four sweeps
        batch, end = sweep.next_batch(len(conditions))
        grid.update([conditions[i] for i in batch], end_of_sweep=end)
        visited_rare |= rare in batch
        assert occupied_at(grid, (0.0, -0.25, 0.0))
        assert occupied_at(grid, mouth) == visited_rare  # found at the first visit, then kept
    assert visited_rare and not occupied_at(grid, (0.7, 0.7, 0.7))

    radnerf = OccupancyGrid(bound=1.0, resolution=16, decay=0.1, density_threshold=5.0, update_fraction=1.0)
    radnerf.update([opened])
    for _ in range(3):  # a few updates drawing the common condition
        radnerf.update([closed])
    assert not occupied_at(radnerf, mouth)


def test_decay_forgets_and_state_is_in_buffers() -> None:
    grid = OccupancyGrid(bound=1.0, resolution=8, decay=0.5, update_fraction=1.0)
    grid.update([blob((0.0, 0.0, 0.0))])
    peak = grid.density.max().item()
    grid.update([lambda x: torch.zeros(x.shape[0])])
    assert grid.density.max().item() == peak * 0.5
    state = grid.state_dict()
    assert {"density", "sweep_max", "occupied", "seen", "updates"} <= set(state)
    fresh = OccupancyGrid(bound=1.0, resolution=8)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.occupied, grid.occupied)


def test_stale_density_fades_after_sweeps() -> None:
    grid = OccupancyGrid(bound=1.0, resolution=16, decay=0.01, density_threshold=5.0, update_fraction=1.0)
    floater, head = box((0.5, 0.5, 0.5), (0.75, 0.75, 0.75), density=50.0), blob((-0.3, 0.0, 0.0))
    grid.update([floater, head])  # early training: a floater
    assert occupied_at(grid, (0.6, 0.6, 0.6))
    grid.update([head])
    assert occupied_at(grid, (0.6, 0.6, 0.6))  # 0.5, above the mean density
    grid.update([head])  # 50 * 0.01^2 = 0.005: below the mean, gone
    assert not occupied_at(grid, (0.6, 0.6, 0.6)) and occupied_at(grid, (-0.3, 0.0, 0.0))


def test_empty_field_keeps_everything() -> None:
    grid = OccupancyGrid(bound=1.0, resolution=8, update_fraction=1.0)
    grid.update([lambda x: torch.zeros(x.shape[0])])
    assert grid.occupancy_ratio == 1.0


def look_at(origin: tuple[float, float, float]) -> torch.Tensor:
    """ngp camera-to-world looking from ``origin`` at the box centre (camera +z forward, y down)."""
    o = torch.tensor(origin)
    forward = -o / o.norm()
    right = torch.nn.functional.normalize(torch.linalg.cross(torch.tensor([0.0, -1.0, 0.0]), forward), dim=0)
    down = torch.linalg.cross(forward, right)
    pose = torch.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, forward, o
    return pose


def test_cells_outside_every_frustum_are_never_occupied() -> None:
    grid = OccupancyGrid(bound=1.0, resolution=16, density_threshold=1.0, update_fraction=1.0)
    size, fov = 64, math.radians(20)
    focal = size / 2 / math.tan(fov / 2)
    intrinsics = torch.tensor([focal, focal, size / 2, size / 2])
    poses = torch.stack([look_at((0.0, 0.0, -3.0)), look_at((0.3, 0.0, -3.0))])
    grid.mark_unseen(poses, intrinsics, size, size)
    # The frustum at the box centre is about 2 * 3 * tan(10 deg) = 1.06 wide.
    assert occupied_at(grid, (0.0, 0.0, 0.0)) and occupied_at(grid, (0.6, 0.0, 0.0))  # second camera
    assert not occupied_at(grid, (0.0, 0.9, 0.0)) and not occupied_at(grid, (-0.9, 0.0, 0.0))
    assert 0.05 < grid.seen.float().mean().item() < 0.5
    grid.update(lambda x: torch.full((x.shape[0],), 100.0))  # dense everywhere: still only seen cells
    assert not occupied_at(grid, (0.0, 0.9, 0.0))
    assert torch.equal(grid.occupied, grid.seen)
    # Every seen cell's centre projects into the image (or within a cell of it) for some camera.
    corners = torch.tensor([[0.0, 0.0, 0.0], [0.6, 0.0, 0.0], [-0.9, 0.0, 0.0]])
    assert grid.seen.view(-1)[grid.cell_index(corners)].tolist() == [True, True, False]


def test_cascades_nest_around_the_centre() -> None:
    grid = OccupancyGrid(bound=4.0, resolution=8)
    assert grid.num_cascades == 3 and grid.cell_sizes == [0.25, 0.5, 1.0]
    points = torch.tensor([[0.1, 0.1, 0.1], [1.5, 0.0, 0.0], [-3.5, 0.0, 0.0]])
    cascade = grid.cell_index(points) // 8**3
    assert cascade.tolist() == [0, 1, 2]
    # Coarse cells covered by a finer cascade are never used (nor probed, nor occupied).
    inner = grid.cell_index(torch.tensor([[0.1, 0.1, 0.1]]))[0] % 8**3
    assert not grid.seen[1, inner] and grid.seen[0, inner]
    grid.update(blob((2.5, 0.0, 0.0), radius=1.0))
    assert occupied_at(grid, (2.5, 0.0, 0.0)) and not occupied_at(grid, (-2.5, 0.0, 0.0))


def test_occupied_box_and_dilation() -> None:
    grid = OccupancyGrid(bound=1.0, resolution=16, density_threshold=5.0)
    grid.update(box((0.125, 0.25, 0.0), (0.375, 0.5, 0.5)))
    lo, hi = grid.occupied_box
    assert lo.tolist() == [0.125, 0.25, 0.0] and hi.tolist() == [0.375, 0.5, 0.5]
    dilated = OccupancyGrid(bound=1.0, resolution=16, density_threshold=5.0, dilation=1)
    dilated.update(box((0.125, 0.25, 0.0), (0.375, 0.5, 0.5)))
    assert dilated.occupied.sum() > grid.occupied.sum()
    assert torch.all(dilated.occupied_box[0] == lo - 0.125) and torch.all(dilated.occupied_box[1] == hi + 0.125)


def test_condition_sweep_visits_everything_once_per_sweep_and_resumes() -> None:
    sweep = ConditionSweep(batch_size=4, seed=3)
    sweeps = []
    for _ in range(3):
        seen, ends = [], []
        for _ in range(sweep.batches_per_sweep(10)):
            batch, end = sweep.next_batch(10)
            seen += batch
            ends.append(end)
        assert sorted(seen) == list(range(10)) and ends == [False, False, True]
        sweeps.append(seen)
    assert sweeps[0] != sweeps[1]  # a new order every sweep
    resumed = ConditionSweep(batch_size=4, seed=3)
    resumed.load_state_dict(ConditionSweep(batch_size=4, seed=3).state_dict())
    resumed.next_batch(10)
    state = resumed.state_dict()
    again = ConditionSweep(batch_size=4, seed=3)
    again.load_state_dict(state)
    assert again.next_batch(10) == resumed.next_batch(10)


def test_update_rejects_nothing_to_evaluate() -> None:
    with pytest.raises(ValueError, match="at least one density function"):
        OccupancyGrid(resolution=8).update([])
