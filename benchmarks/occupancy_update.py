"""Occupancy-update cost: the field's own batched densities against the plain per-condition path.

    python benchmarks/occupancy_update.py                 # experiment=quickstart
    python benchmarks/occupancy_update.py arm=rad_nerf    # any config override

Builds the quickstart's module as ``benchmarks/train_step.py`` does, trains ``--warmup`` steps (past
the first update, so that later updates probe occupied cells, their neighbours and a lottery), then
runs the next update ``--repeats`` times from the same grid state and the same random jitter, in
turn with three density functions: the field's own ``densities`` (``HeadField``: the frame folded
into the sigma net, density row only, one positional encoding for all conditions), the training
net on a shared encoding (``HeadField.densities`` before commit 742bec3) and the plain path
(``Field.densities``: ``field.density`` per condition, the encoding recomputed each time). Prints
the median seconds of each, their ratios to the field's own, and how far each grid is from the
plain one (largest relative difference of the values; whether the occupied cells agree). All run
alternately in one process, so that load on the machine slows them alike.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_step import build  # the benchmarks folder is not a package

from talker.fields.base import Field

OWN, SHARED, PLAIN = "field's own", "training net, shared encoding", "plain"


def shared_encoding(field: Field, x: torch.Tensor, conds: Sequence, frames: Sequence | None = None) -> torch.Tensor:
    """``[B, N]``: one positional encoding, then the training path's sigma net per condition."""
    frames = frames if frames is not None else [None] * len(conds)
    pos = field.encoder(x)
    return torch.stack([field._sigma_and_geometry(x, c, f, pos)[0] for c, f in zip(conds, frames)])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warmup", type=int, default=33, help="training steps first (first update: step 32)")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    args, overrides = parser.parse_known_args(argv)

    runner, batches = build(overrides, args.threads)
    for step in range(args.warmup):
        runner.step(step, next(batches))
    head = runner.module.head
    field_type = type(head.field)
    own = field_type.densities
    state = copy.deepcopy(head.occupancy.state_dict()), copy.deepcopy(head.sweep.state_dict())
    times: dict[str, list[float]] = {OWN: [], SHARED: [], PLAIN: []}
    worst = {OWN: 0.0, SHARED: 0.0}
    same_cells = {OWN: True, SHARED: True}
    try:
        for repeat in range(args.repeats):
            grids = {}
            for name, densities in ((OWN, own), (SHARED, shared_encoding), (PLAIN, Field.densities)):
                head.occupancy.load_state_dict(state[0])
                head.sweep.load_state_dict(state[1])
                field_type.densities = densities  # type: ignore[method-assign]
                torch.manual_seed(repeat)  # the same jitter and lottery for both
                start = time.perf_counter()
                head.update_occupancy(runner.conditions)
                times[name].append(time.perf_counter() - start)
                grids[name] = head.occupancy.values.clone(), head.occupancy.occupied.clone()
            plain, plain_cells = grids[PLAIN]
            for name, (values, cells) in grids.items():
                if name == PLAIN:
                    continue
                worst[name] = max(worst[name], ((values - plain).abs() / plain.abs().clamp(min=1e-30)).max().item())
                same_cells[name] = same_cells[name] and torch.equal(cells, plain_cells)
    finally:
        field_type.densities = own  # type: ignore[method-assign]
    median = {name: statistics.median(t) for name, t in times.items()}
    print(f"one occupancy update after {args.warmup} steps, {args.repeats} repeats each, alternating; "
          f"overrides: {' '.join(overrides) or '(none)'}")
    for name, seconds in median.items():
        line = f"  {name:30s}: median {seconds:.3f} s, {seconds / median[OWN]:.2f}x the field's own"
        if name in worst:
            line += f"; grid values within {worst[name]:.1e} relative of the plain path's, same cells: {same_cells[name]}"
        print(line)


if __name__ == "__main__":
    main()
