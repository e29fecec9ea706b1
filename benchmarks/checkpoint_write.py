"""What atomic, verified checkpoints cost: Lightning's TorchCheckpointIO against talker's AtomicCheckpointIO.

    python benchmarks/checkpoint_write.py [--megabytes 71] [--repeats 5] [--folder <dir>]

Writes a checkpoint-shaped dict of ``--megabytes`` of float32 tensors (the quickstart's last.ckpt is
about 71 MB) into ``--folder`` (default: a temporary folder; point it at the disk your runs live on)
with each writer in turn, ``--repeats`` times, and prints the median time of a write, of a full
read, and of the start-of-run check (a memory-mapped read), with the ratio of talker's to Lightning's.
The two writers alternate, so that both see the same load on a shared machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from lightning.fabric.plugins import TorchCheckpointIO

from talker.utils.checkpoint_io import AtomicCheckpointIO
from talker.utils.checkpoints import load_checkpoint, resume_checkpoint


def checkpoint(megabytes: float) -> dict:
    numel = int(megabytes * 2**20 / 4)
    tensors = {f"layer{i}.weight": torch.randn(numel // 8) for i in range(8)}
    return {"state_dict": tensors, "global_step": 1, "optimizer_states": [], "loops": {}}


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=71.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--folder", type=Path, default=None)
    args = parser.parse_args()
    state = checkpoint(args.megabytes)
    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        folder = Path(tmp)
        writers = {"lightning": TorchCheckpointIO(), "talker": AtomicCheckpointIO()}
        times: dict[str, dict[str, list[float]]] = {name: {"write": [], "read": [], "check": []} for name in writers}
        for _ in range(args.repeats):
            for name, writer in writers.items():
                path = folder / name / "last.ckpt"
                times[name]["write"].append(timed(lambda: writer.save_checkpoint(state, path)))
                if name == "lightning":
                    times[name]["read"].append(timed(lambda: torch.load(path, map_location="cpu", weights_only=True)))
                    times[name]["check"].append(float("nan"))
                else:
                    times[name]["read"].append(timed(lambda: load_checkpoint(path)))
                    times[name]["check"].append(timed(lambda: resume_checkpoint(path, report=lambda _: None)))
        size = (folder / "talker" / "last.ckpt").stat().st_size / 2**20
    print(f"checkpoint of {size:.1f} MB, median of {args.repeats} (ms)")
    print(f"{'':12s}{'lightning':>12s}{'talker':>12s}{'ratio':>8s}")
    for what in ("write", "read", "check"):
        ours, theirs = (statistics.median(times[n][what]) for n in ("talker", "lightning"))
        if theirs == theirs:  # not NaN: Lightning has no start-of-run check
            print(f"{what:12s}{theirs:12.1f}{ours:12.1f}{ours / theirs:8.2f}")
        else:
            print(f"{what:12s}{'-':>12s}{ours:12.1f}")


if __name__ == "__main__":
    main()
