"""benchmarks/gpu/measure.py (the Python part of benchmarks/gpu/run_all.sh) end to end on CPU at
test sizes: every figure the GPU check reports is in its JSON, finite and positive."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

from ..conftest import REPO

spec = importlib.util.spec_from_file_location("gpu_measure", REPO / "benchmarks" / "gpu" / "measure.py")
measure = importlib.util.module_from_spec(spec)
spec.loader.exec_module(measure)

PER_SYSTEM = {
    "frames": ["training_ms", "fast_ms", "fast_speedup", "fast_psnr_vs_training_db", "evaluated_per_frame.training",
               "evaluated_per_frame.fast"],
    "train": ["step_ms", "iterations_per_s", "projected_240k_minutes"],
    "profile": ["stages_ms.conditioning", "stages_ms.render", "total_ms", "fps"],
}


def problems(result: dict) -> list[str]:
    """Every figure the GPU check must report that is missing, not a number, or not finite and positive."""
    found = []
    for part, keys in PER_SYSTEM.items():
        systems = result.get(part, {}).get("systems", {})
        for system in ("r2talker", "rad_nerf", "er_nerf"):
            for key in keys:
                value = systems.get(system, {})
                for name in key.split("."):
                    value = value.get(name) if isinstance(value, dict) else None
                if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                    found.append(f"{part}.systems.{system}.{key} = {value!r}")
    return found


def test_quick_cpu_run_reports_every_figure(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "results.json"
    measure.main(["all", "--device", "cpu", "--quick", "--out", str(out), "--data-dir", str(data_dir)])
    result = json.loads(out.read_text())
    assert problems(result) == []
    assert result["frames"]["size"] == 32 and result["train"]["rays_per_step"] == 128
    # The fast path renders the training path's image (docs/inference.md: the same image up to rounding).
    assert all(r["fast_psnr_vs_training_db"] > 45 for r in result["frames"]["systems"].values())
    # The combined file keeps every part and says which one is missing.
    for part in ("frames", "train"):
        (tmp_path / f"{part}.json").write_text(json.dumps(result[part]))
    combined = measure.combine([tmp_path / "frames.json", tmp_path / "train.json", tmp_path / "profile.json"])
    assert combined["frames"] == result["frames"] and "missing" in combined["profile"]["error"]
    assert problems(combined) and all(p.startswith("profile.") for p in problems(combined))


def test_a_broken_part_is_reported_not_hidden(tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A training step whose loss is not finite stops the part with a one-line error naming the system."""
    runner = measure._load("train_step").StepRunner
    monkeypatch.setattr(runner, "step", lambda self, step, batch: __import__("torch").tensor(float("nan")))
    monkeypatch.setattr(measure, "_load", lambda name: type("M", (), {"StepRunner": runner}))
    with pytest.raises(RuntimeError, match="train: system=r2talker: loss nan"):
        measure.main(["train", "--device", "cpu", "--quick", "--out", str(tmp_path / "t.json"), "--data-dir", str(data_dir)])
