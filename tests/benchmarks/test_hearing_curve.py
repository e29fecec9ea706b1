"""benchmarks/hearing_curve.py on a tiny run that kept two checkpoints (callbacks=[default,history])."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from PIL import Image

from talker.config import compose_config
from talker.fit import train
from talker.runs import RunFolder

from ..conftest import REPO, TINY


def test_hearing_curve_scores_every_kept_checkpoint_once(data_dir: Path, tmp_path: Path) -> None:
    overrides = [
        *TINY, f"paths.data_dir={data_dir}", f"run_dir={tmp_path / 'run'}", "trainer.max_steps=6",
        "callbacks=[default,history]", "callbacks.history.every_n_train_steps=3",
    ]
    run = RunFolder(train(compose_config(overrides)))
    kept = sorted(p.name for p in run.saved_checkpoints() if not p.name.startswith("last"))
    assert kept == ["step=000003.ckpt", "step=000006.ckpt"]  # last.ckpt (step 6) is there too
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "hearing_curve.py"), str(run.path)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "[2/2]" in proc.stdout and "gap" in proc.stdout
    with (run.path / RunFolder.HEARING_CURVE).open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == [3, 6]
    assert list(rows[0]) == ["step", "psnr_mouth_own", "psnr_mouth_other", "gap"]
    for row in rows:
        assert float(row["gap"]) == float(row["psnr_mouth_own"]) - float(row["psnr_mouth_other"])
    # The last point is the run's own checkpoint: the evaluator's figures at the end of the fit.
    metrics = run.metrics()["metrics"]
    assert float(rows[-1]["psnr_mouth_own"]) == metrics["psnr_mouth"] and float(rows[-1]["gap"]) == metrics["cond_gap_mouth"]
    with Image.open(run.path / RunFolder.HEARING_CURVE_PLOT) as png:
        assert png.format == "PNG" and png.width > 100


def test_hearing_curve_without_checkpoints_fails_in_one_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("data: {}\n")
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "hearing_curve.py"), str(run)], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith("hearing_curve: ") and "no checkpoints" in proc.stderr
