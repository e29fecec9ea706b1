"""DDP (gloo, 2 CPU processes) trains as one process on the same total batch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from talker.data.datamodule import shard_rays
from talker.utils.checkpoints import load_checkpoint

from ..conftest import TINY


def _fit(tmp_path: Path, data_dir: Path, name: str, *extra: str) -> Path:
    run = tmp_path / name
    overrides = [
        "experiment=quickstart", *TINY, "schedule.scale=0.002", "data.num_rays=64",  # 8 steps, occupancy updates at 2, 4, 6
        f"paths.data_dir={data_dir}", f"paths.runs_dir={tmp_path / 'runs'}", f"run_dir={run}",
        "trainer.accelerator=cpu", *extra,
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "talker.fit", *overrides], capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run


def _scalars(run: Path, tag: str) -> list[float]:
    events = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0})
    events.Reload()
    return [e.value for e in events.Scalars(tag)]


@pytest.mark.slow
def test_two_gloo_processes_train_like_one_on_the_same_batch(tiny_clip: Path, data_dir: Path, tmp_path: Path) -> None:
    single = _fit(tmp_path, data_dir, "single")
    ddp = _fit(tmp_path, data_dir, "ddp", "trainer=ddp", "trainer.devices=2")

    assert set(_scalars(single, "train/rays")) == {64.0} and set(_scalars(ddp, "train/rays")) == {32.0}
    one, two = _scalars(single, "train/loss"), _scalars(ddp, "train/loss")
    assert len(one) == len(two) == 8
    # Float sums in a different order (two half-batch means, gloo all-reduce) and nothing else.
    assert torch.allclose(torch.tensor(two), torch.tensor(one), rtol=1e-4, atol=1e-6), (one, two)

    weights = [load_checkpoint(run / "checkpoints" / "last.ckpt", map_location="cpu")["state_dict"] for run in (single, ddp)]
    assert weights[0].keys() == weights[1].keys()
    for key, value in weights[0].items():
        assert torch.allclose(value.float(), weights[1][key].float(), rtol=1e-3, atol=1e-5), key
    # Rank zero alone evaluated and wrote the results.
    assert (ddp / "metrics.json").is_file() and (ddp / "config.yaml").is_file()


def test_ranks_split_one_batch_and_draw_its_jitter() -> None:
    batch = {
        "rays_o": torch.arange(12.0).view(4, 3), "rays_d": torch.ones(4, 3), "rgb": torch.rand(4, 3),
        "background": torch.zeros(4, 3), "index": 3, "cond": {}, "noise_seed": 11,
    }
    shards = [shard_rays(batch, rank, 2) for rank in range(2)]
    whole = shard_rays(batch, 0, 1)
    assert torch.equal(torch.cat([s["rays_o"] for s in shards]).sort(0).values, batch["rays_o"])
    jitter = whole["ray_noise"].rand(5, like=torch.zeros(1))
    for rank, shard in enumerate(shards):
        assert torch.equal(shard["ray_noise"].rand(5, like=torch.zeros(1)), jitter[rank::2])
        assert shard["index"] == 3
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        shard_rays(batch, 0, 3)
