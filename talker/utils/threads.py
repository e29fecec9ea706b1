"""CPU threads of a run: how many, and applying them before any work starts.

Two talker processes on one machine (cells of a local grid, or a second job next to a training)
used to slow each other down by up to 30x: each ran as many OpenMP threads as the machine has
cores, and OpenMP's threads busy-wait for each other at every parallel region, so a thread whose
partner was descheduled burned its time slice spinning. Two measures, both measured in
``benchmarks/threads.py``:

- ``OMP_WAIT_POLICY=PASSIVE`` with ``GOMP_SPINCOUNT=1000`` (set in ``talker/__init__.py`` before
  torch loads OpenMP, unless the environment says otherwise): waiting threads sleep after a spin of
  microseconds instead of spinning for milliseconds.
- ``threads`` (config key): by default the cores this process may use (its CPU affinity, which
  SLURM and taskset restrict), divided among the cells a launcher runs at once on this machine
  (``parallel_cells``); ``OMP_NUM_THREADS``, when set, is taken as the user's choice.
"""

from __future__ import annotations

import os

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def available_cores() -> int:
    """Cores this process may run on (its affinity mask; all cores where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_threads(threads: int | None, parallel_cells: int = 1) -> int:
    """``threads`` if given, else ``$OMP_NUM_THREADS`` if set, else this process's share of the cores."""
    if threads is not None:
        if int(threads) < 1:
            raise ValueError(f"threads={threads}: must be at least 1 (or null for this process's share of the cores)")
        return int(threads)
    from_env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if from_env.isdigit() and int(from_env) > 0:
        return int(from_env)
    return max(1, available_cores() // max(1, int(parallel_cells)))


def use_threads(count: int) -> None:
    """Run torch's CPU math on ``count`` threads, and tell subprocesses (data workers, ...) the same."""
    import torch

    torch.set_num_threads(count)
    for name in THREAD_VARIABLES:
        os.environ[name] = str(count)
