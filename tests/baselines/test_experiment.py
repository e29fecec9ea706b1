"""experiment=baselines through the real entry point: every system trains, is scored self- and
cross-driven, the landmark heads through the motion stage the grid trains before its cells, and Tables 1
and 2 are written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from talker.reporting import build_table, collect_runs
from talker.utils.checkpoints import load_checkpoint

from ..conftest import BASELINES_TINY, MOTION_TINY
from ..test_experiments import SYSTEMS
from ..test_fit import assert_complete_run

LABELS = {"rad_nerf": "RAD-NeRF", "er_nerf": "ER-NeRF", "geneface_pp": "Geneface++†", "r2talker": "Ours"}


@pytest.mark.slow
def test_every_system_trains_and_tables_1_and_2_are_written(
    data_dir: Path, tmp_path: Path, tiny_speech: dict[str, Path], syncnet_home: Path
) -> None:
    runs = tmp_path / "runs"
    motion = [o for o in MOTION_TINY if not o.startswith("trainer.max_steps")] + [f"paths.data_dir={data_dir}", "trainer.max_steps=4"]
    command = [
        sys.executable, "-m", "talker.fit", "experiment=baselines", *BASELINES_TINY,
        f"paths.data_dir={data_dir}", f"paths.runs_dir={runs}",
        f"callbacks.cross_driven.audio.cross_gender={tiny_speech['a']}",
        f"callbacks.cross_driven.audio.cross_lingual={tiny_speech['b']}",
        "needs.motion.overrides=[" + ",".join(f"'{o}'" for o in motion) + "]",
    ]
    env = {**__import__("os").environ, "TORCH_HOME": str(syncnet_home)}  # test-made SyncNet: Sync is computed
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    grid = runs / "baselines"
    for system in SYSTEMS:
        (run,) = grid.glob(f"system={system},*")  # the cell folder names the grid's axis first
        assert_complete_run(run)
        for setting in ("cross_gender", "cross_lingual"):
            result = json.loads((run / "cross" / setting / "metrics.json").read_text())
            assert result["tags"] == {"method": system, "setting": setting} and "sync_conf" in result["metrics"]
            assert (run / "cross" / setting / f"{setting}.mp4").is_file()
    assert "motion: training it first" in proc.stdout + proc.stderr  # by the grid, before the cells, once
    assert load_checkpoint(grid / "motion" / "checkpoints" / "last.ckpt")["global_step"] == 4  # max_steps
    collected = collect_runs(grid)
    table1, table2 = build_table(collected, "table1"), build_table(collected, "table2")
    for system, label in LABELS.items():
        assert table1.cells[(label, "PSNR")].n == 1 and table1.cells[(label, "FPS")].n == 1, label
        assert table2.cells[(label, "Cross Gender")].n == 1 and table2.cells[(label, "Cross Lingual")].n == 1, label
    assert (grid / "table1.md").read_text() == table1.markdown()
    assert (grid / "table2.md").read_text() == table2.markdown()
