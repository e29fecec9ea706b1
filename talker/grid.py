"""What a grid of runs needs beyond Hydra's launchers: finished-cell detection, failure records,
and pinning one GPU per cell when cells run in parallel on one machine.

Hydra's launchers (basic, joblib, submitit) decide when and where cells run; this module only lets
a cell notice that it already ran, record that it failed without stopping its siblings, and claim a
GPU of its own.
"""

from __future__ import annotations

import fcntl
import json
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from talker.config import ConfigError, load_config_file

METRICS = "metrics.json"
CONFIG = "config.yaml"
FAILED = "FAILED.txt"

# Keys that may change between launches of the same run without making it a different run:
# where it is stored, how long it trains, how it is logged and checkpointed, which launcher runs it.
VOLATILE = (
    "run_dir", "resume", "skip_finished", "claim_device", "paths", "trainer", "logger", "callbacks", "hydra",
    "data.cache_dir", "threads", "parallel_cells",
)


def plain(cfg: DictConfig) -> dict:
    data = OmegaConf.to_container(cfg, resolve=True)
    data.pop("hydra", None)
    return data


def config_differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two plain configs, ignoring ``VOLATILE`` keys."""
    keys = []
    for key in sorted(set(old) | set(new), key=str):
        if f"{prefix}{key}" in VOLATILE:
            continue
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            keys.append(f"{prefix}{key}")
    return keys


def check_existing_run(run_dir: Path, cfg: DictConfig) -> bool:
    """Decide what to do with a run folder that may hold an earlier launch.

    Returns True if the run is finished (its metrics.json reports at least ``trainer.max_steps``
    steps) and should be skipped. Raises :class:`ConfigError` if the folder holds a run with other
    settings and would be resumed from it, so nothing already written is silently mixed or lost.
    """
    old_config = run_dir / CONFIG
    if not old_config.is_file():
        return False
    old = load_config_file(old_config, check=False)  # compared, never built
    differences = config_differences(OmegaConf.to_container(old), plain(cfg))
    if differences and cfg.resume:
        shown = ", ".join(differences[:5]) + (f" (+{len(differences) - 5} more)" if len(differences) > 5 else "")
        raise ConfigError(
            f"{run_dir} holds a run with other settings ({shown}); give this run another name "
            f"(name=...) or pass resume=false to train it from scratch there"
        )
    metrics = run_dir / METRICS
    if differences or not metrics.is_file():
        return False
    try:
        done = json.loads(metrics.read_text()).get("global_step") or 0
    except (ValueError, AttributeError):  # damaged (a full disk, an edit): not finished, evaluated again
        print(f"[talker] {metrics}: not readable; the run is resumed and evaluated again", file=sys.stderr)
        return False
    return done >= int(cfg.trainer.max_steps)


def record_failure(run_dir: Path, exc: BaseException) -> Path:
    """Write the cell's traceback to ``FAILED.txt`` in its run folder."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / FAILED
    path.write_text("".join(traceback.format_exception(exc)))
    return path


def clear_failure(run_dir: Path) -> None:
    (run_dir / FAILED).unlink(missing_ok=True)


def failed_cells(sweep_dir: Path, since: float = 0.0) -> list[tuple[Path, str]]:
    """Cells under ``sweep_dir`` that recorded a failure at or after ``since`` (epoch seconds)."""
    out = []
    for path in sorted(Path(sweep_dir).glob(f"*/{FAILED}")):
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
