"""Collect run folders into one DataFrame: one row per scored run, keyed by its config choices.

A run folder is any folder with a ``metrics.json`` (written by the evaluation callback or by
``talker.evaluate``). Columns:

- ``run``: the folder, relative to the collected root;
- ``name``, ``seed`` (from ``config.yaml``), every config-group choice (``conditioning``,
  ``schedule``, ... from ``.hydra/hydra.yaml``) and every key override (``field.position_encoder.level_dim``,
  ... from ``.hydra/overrides.yaml``), values parsed as YAML scalars;
- ``tags`` of external evaluations (``method``, ``setting``, ... from ``talker.evaluate tag.<k>=<v>``);
- every metric of ``metrics.json`` (``psnr``, ``lpips``, ``sync_conf``, ...); unavailable ones are
  missing (NaN) and listed in ``unavailable``;
- the speed profile of ``speed.json``: ``time_<stage>_ms``, ``time_total_ms``, ``fps``, ``speed_resolution``,
  and ``time_render_module_ms`` (conditioning + render: what R2-Talker's Table 5 calls the render module).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from talker.config import axis_choices
from talker.errors import TalkerError
from talker.runs import RunFolder



class ReportError(TalkerError, ValueError):
    """A run folder or table specification cannot be read; the message names the file."""


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not valid JSON ({exc})") from exc


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ReportError(f"{path}: not valid YAML ({exc})") from exc


def _scalar(value: str) -> Any:
    """``"4"`` -> 4, ``"0.5"`` -> 0.5, ``"landmark_hash"`` -> itself (as Hydra would read it)."""
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    return parsed if isinstance(parsed, (int, float, str, bool)) or parsed is None else value


def read_run(run_dir: Path) -> dict[str, Any]:
    """One row: config choices, overrides, tags, metrics and speed of a run folder."""
    row: dict[str, Any] = {}
    hydra_file = run_dir / ".hydra" / "hydra.yaml"
    if hydra_file.is_file():
        hydra_cfg = (_read_yaml(hydra_file) or {}).get("hydra", {})
        row.update(axis_choices(hydra_cfg.get("runtime", {}).get("choices")))
    overrides_file = run_dir / ".hydra" / "overrides.yaml"
    if overrides_file.is_file():
        for item in _read_yaml(overrides_file) or []:
            key, _, value = str(item).lstrip("+~").partition("=")
            if "." in key and not key.startswith(("hydra.", "paths.")):
                row[key] = _scalar(value)
    config_file = run_dir / RunFolder.CONFIG
    if config_file.is_file():
        config = _read_yaml(config_file) or {}
        row.update({k: config[k] for k in ("name", "seed") if k in config})
    result = _read_json(run_dir / RunFolder.METRICS)
    row.update(result.get("tags") or {})
    row.update(result.get("metrics") or {})
    row["unavailable"] = ", ".join(sorted(result.get("unavailable") or {}))
    row["num_frames"] = result.get("num_frames")
    speed_file = run_dir / RunFolder.SPEED
    if speed_file.is_file():
        speed = _read_json(speed_file)
        stages = speed.get("stages_ms", {})
        row.update({f"time_{stage}_ms": ms for stage, ms in stages.items()})
        if {"conditioning", "render"} <= set(stages):
            row["time_render_module_ms"] = stages["conditioning"] + stages["render"]
        row.update({"time_total_ms": speed.get("total_ms"), "fps": speed.get("fps"), "speed_resolution": speed.get("resolution")})
    return row


def collect_runs(root: str | Path) -> pd.DataFrame:
    """Every run folder under ``root`` (any depth) as a DataFrame, one row per run, sorted by folder."""
    root = Path(root)
    if not root.is_dir():
        raise ReportError(f"{root}: runs folder does not exist")
    rows = []
    for metrics in sorted(root.rglob(RunFolder.METRICS)):
        if any(part.startswith(".") for part in metrics.relative_to(root).parts[:-1]):
            continue  # .hydra/, .ipynb_checkpoints/, ...
        rows.append({"run": metrics.parent.relative_to(root).as_posix(), **read_run(metrics.parent)})
    return pd.DataFrame(rows)
