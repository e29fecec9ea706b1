"""``python -m talker.drive`` on a 10 s and a 60 s wav: wall time and peak memory, fast path against
training path, and whether peak memory grows with the audio's length.

    python benchmarks/drive_memory.py                          # trains a tiny head + motion stage first
    python benchmarks/drive_memory.py --run H --motion M       # existing runs (R2-Talker head, motion stage)
    python benchmarks/drive_memory.py --collected              # also the pre-streaming drive (all frames
                                                               # held in a list, then written)

The audio is the first ``--seconds`` of ``../shared/data/audio/eng.wav`` (60 s of English speech,
shared/data/SOURCES.md), resampled to 16 kHz mono. Without ``--run``, an R2-Talker head
(``experiment=quickstart`` with test-sized nets: 4-level positional grid, 16-wide MLPs, 16^3
occupancy grid, ``max_steps=16``) is trained for a few steps on a ``--size`` px synthetic clip, and a
motion stage of the same sizes as the tests' on the same identity: rendering cost per frame is then
small, so that four 60 s drives take minutes on two CPU cores; frames are ``--size`` x ``--size``.

Every drive is the real command in its own process, timed from its start to its exit; its peak
resident memory is ``ru_maxrss`` from ``os.wait4`` for that process, read by a small launcher that
forked it (see ``LAUNCHER``): the largest of the drive and the processes it waited for (ffmpeg), not
their sum. A peak that does not grow with the
audio means frames are written as they are rendered; the ratio 60 s / 10 s of the peak is printed,
and the CPU seconds per frame of rendering and writing as the difference of the two lengths' CPU
times over the difference of their frame counts (start-up, the same for both, cancels). CPU seconds
(user + system, from the same ``wait4``) are printed next to wall seconds: on a loaded machine they
vary far less.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from talker.config import TINY_NETWORK

REPO = Path(__file__).resolve().parent.parent
SPEECH = "audio/eng.wav"
# The test sizes (tests/conftest.py TINY): a head that renders a frame in milliseconds.
HEAD = [
    "experiment=quickstart",
    "data.synthetic.num_frames=12",
    "data.synthetic.val_fraction=0.25",
    "data.num_rays=128",
    "data.val_frames=1",
    *TINY_NETWORK,
    "schedule.head_steps=4000",
    "schedule.scale=0.005",  # 20 steps: enough for an occupancy grid that is not all full
    "trainer.val_check_interval=10",
    "trainer.enable_progress_bar=false",
    "callbacks.checkpoint.every_n_train_steps=10",
    "callbacks.evaluation=null",
    "callbacks.projector=null",
    "callbacks.images=null",
]
MOTION = [
    "experiment=motion",
    "data.synthetic.num_frames=80",
    "data.synthetic.val_fraction=0.25",
    "data.sequence_frames=20",
    "data.batch_size=2",
    "data.crops_per_epoch=4",
    "generator.hidden=8",
    "generator.flow_hidden=8",
    "generator.flow_layers=2",
    "model.sync_expert.hidden=8",
    "model.sync_expert.embed=8",
    "model.sync_start=2",
    "trainer.max_steps=4",
    "trainer.val_check_interval=2",
    "trainer.enable_progress_bar=false",
    "callbacks.checkpoint.every_n_train_steps=2",
]


def shared_data() -> Path:
    root = Path(os.environ["TALKER_SHARED"]) if "TALKER_SHARED" in os.environ else None
    for candidate in (root, REPO.parent / "shared", REPO.parent.parent / "shared"):
        if candidate is not None and (candidate / "data" / SPEECH).is_file():
            return candidate / "data"
    raise SystemExit(f"drive_memory: {SPEECH} not found under ../shared/data (set TALKER_SHARED)")


def train_tiny(root: Path, size: int) -> tuple[Path, Path]:
    """A tiny R2-Talker head and motion stage on a ``size`` px synthetic identity."""
    from talker.config import compose_config
    from talker.fit import train

    data = [f"paths.data_dir={root / 'data'}", f"data.synthetic.resolution={size}"]
    head = train(compose_config([*HEAD, *data, f"run_dir={root / 'head'}"]))
    motion = train(compose_config([*MOTION, *data, f"run_dir={root / 'motion'}"]))
    return Path(head), Path(motion)


# Started fresh for each drive, this launcher forks and waits for it. Its peak RSS must come from a
# process forked by a small one: Linux carries the RSS high-water mark of the process that forked over
# an exec into ru_maxrss, so a drive forked straight from this (torch-loaded, trained) process would
# report at least this process's peak.
LAUNCHER = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss, usage.ru_utime + usage.ru_stime)
"""


def measure(command: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MiB) of ``command``, run to completion in
    its own process. On a loaded machine CPU seconds vary far less than wall seconds."""
    start = time.perf_counter()
    launch = [sys.executable, "-c", LAUNCHER, *command]
    proc = subprocess.run(launch, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    code, peak_kb, cpu = proc.stdout.split()[-3:] if proc.returncode == 0 else (proc.returncode, 0, 0)
    if int(code) != 0:
        raise SystemExit(f"drive_memory: {' '.join(command)} failed ({code}):\n{proc.stderr[-2000:]}")
    return seconds, float(cpu), int(peak_kb) / 1024  # Linux: kB


def collected_drive(argv: list[str]) -> None:
    """The drive as it was before it streamed: every frame rendered into a list, then written."""
    import importlib

    from talker.drive import main

    module = importlib.import_module("talker.inference.drive")  # the module (the package's `drive` is the function)
    streamed = module.render_run
    module.render_run = lambda *args, **kwargs: list(streamed(*args, **kwargs))
    main(argv)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a trained R2-Talker head run (default: train a tiny one)")
    parser.add_argument("--motion", type=Path, help="its motion stage run (with --run)")
    parser.add_argument("--size", type=int, default=128, help="synthetic clip size in px (without --run)")
    parser.add_argument("--seconds", type=float, nargs="+", default=[10.0, 60.0])
    parser.add_argument("--collected", action="store_true", help="also the pre-streaming drive (frames in a list)")
    parser.add_argument("--work", type=Path, help="where runs, wavs and videos go (default: a temporary folder)")
    parser.add_argument("--collected-drive", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.collected_drive is not None:
        collected_drive(args.collected_drive)
        return

    from talker.audio import load_audio, write_wav

    work = args.work or Path(tempfile.mkdtemp(prefix="drive-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.run:
        if not args.motion:
            raise SystemExit("drive_memory: --run needs --motion (an R2-Talker head is driven by landmarks)")
        head, motion = args.run, args.motion
    else:
        start = time.perf_counter()
        head, motion = train_tiny(work, args.size)
        print(f"trained a tiny head ({args.size} x {args.size} px) and motion stage in {time.perf_counter() - start:.0f} s")
    speech = load_audio(shared_data() / SPEECH)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    paths = {"fast path": ["inference.fast=true"], "training path": ["inference.fast=false"]}
    drives = {name: [sys.executable, "-m", "talker.drive"] for name in paths}
    if args.collected:
        paths["fast, frames collected"] = ["inference.fast=true"]
        drives["fast, frames collected"] = [sys.executable, __file__, "--collected-drive"]
    rows: dict[str, dict[float, tuple[float, float, int, float]]] = {name: {} for name in paths}
    for seconds in args.seconds:
        wav = work / f"speech_{seconds:g}s.wav"
        clip = speech[: int(seconds * 16000)]
        if clip.shape[0] < int(seconds * 16000):
            raise SystemExit(f"drive_memory: {SPEECH} has {speech.shape[0] / 16000:.1f} s, fewer than {seconds:g} s")
        write_wav(wav, clip)
        frames = int(np.ceil(clip.shape[0] / 16000 * 25))
        for name, switches in paths.items():  # the paths alternate, so that load slows them alike
            out = work / "out" / f"{name.replace(' ', '_').replace(',', '')}_{seconds:g}s"
            command = [*drives[name], f"run={head}", f"audio={wav}", f"motion={motion}", f"out={out}", "device=cpu",
                       *switches]
            wall, cpu, peak = measure(command, env)
            rows[name][seconds] = (wall, cpu, frames, peak)
            print(f"  {name:24s} {seconds:5g} s: {wall:7.1f} s wall, {cpu:7.1f} s CPU, {frames} frames, "
                  f"peak RSS {peak:.0f} MiB", flush=True)

    lo, hi = min(args.seconds), max(args.seconds)
    header = "".join(f" | {s:g} s: wall s | CPU s | frames | peak RSS MiB" for s in args.seconds)
    what = f"{args.size} x {args.size} px" if not args.run else str(args.run)
    print(f"\n| drive ({what}){header} | CPU s per extra frame | peak {hi:g} s / {lo:g} s |")
    print("|---" * (1 + 4 * len(args.seconds) + 2) + "|")
    for name, by_length in rows.items():
        cells = "".join(
            f" | {wall:.1f} | {cpu:.1f} | {frames} | {peak:.0f}" for wall, cpu, frames, peak in (by_length[s] for s in args.seconds)
        )
        # Start-up (imports, dataset, model) is in both lengths' times: the difference is rendering and writing.
        (_, cpu_lo, frames_lo, peak_lo), (_, cpu_hi, frames_hi, peak_hi) = by_length[lo], by_length[hi]
        per_frame = (cpu_hi - cpu_lo) / max(frames_hi - frames_lo, 1)
        print(f"| {name}{cells} | {per_frame:.3f} | {peak_hi / peak_lo:.3f} |")

if __name__ == "__main__":
    main()
