"""What a grid of runs needs beyond Hydra's launchers: listing the cells that failed, and pinning one
GPU per cell when cells run in parallel on one machine.

Hydra's launchers (basic, joblib, submitit) decide when and where cells run; a cell notices that it
already ran and records that it failed through its :class:`~talker.runs.RunFolder`.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from talker.runs import RunFolder


def failed_cells(sweep_dir: Path, since: float = 0.0) -> list[tuple[Path, str]]:
    """Cells under ``sweep_dir`` that recorded a failure at or after ``since`` (epoch seconds)."""
    out = []
    for path in sorted(Path(sweep_dir).glob(f"*/{RunFolder.FAILED}")):
        if path.stat().st_mtime >= since:
            lines = path.read_text().strip().splitlines()
            out.append((path.parent, lines[-1] if lines else "failed"))
    return out


@contextmanager
def claim_device(lock_dir: Path, count: int, poll_s: float = 2.0) -> Iterator[int]:
    """Hold an exclusive lock on one of ``count`` device slots and yield its index.

    Cells launched in parallel (e.g. by the joblib launcher with one worker per GPU) each take a
    different GPU; a cell that finds every slot taken waits. Locks are ``flock``s on files in
    ``lock_dir``, released when the cell ends, even if its process dies.
    """
    if count < 1:
        raise ValueError(f"claim_device needs at least one device, got {count}")
    lock_dir.mkdir(parents=True, exist_ok=True)
    announced = False
    while True:
        for index in range(count):
            handle = open(lock_dir / f"device{index}.lock", "w")  # noqa: SIM115 - held until release
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                yield index
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
            return
        if not announced:
            print(f"[talker] all {count} devices are busy; waiting for one to free up")
            announced = True
        time.sleep(poll_s)
