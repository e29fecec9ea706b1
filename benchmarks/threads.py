"""The quickstart alone and next to a second talker process, before and after the threads change.

    python benchmarks/threads.py [--steps 200] [--repeats 1] [--before <git ref>] [--work <folder>]

Each measurement trains the quickstart's first ``--steps`` steps (its evaluation callbacks off, its
clip generated once beforehand into a shared data folder) and reads the training time talker prints
("run folder: ... (N s)"):

  alone   one process;
  pair    two identical processes started together (a second job next to a training, or two
          cells of a local grid).

``before`` is the code at ``--before`` (default: the commit before ``talker/utils/threads.py`` came
in), unpacked into a temporary folder: torch's defaults, i.e. as many OpenMP threads as cores,
which spin while they wait. ``after`` is this checkout with its defaults (the same thread count,
waiting threads sleep); ``after split`` gives each process of the pair its share of the cores
(``threads`` = cores / 2, what ``launcher=local`` with two cells computes). OMP_NUM_THREADS and
OMP_WAIT_POLICY are removed from the environment of every run, so the defaults are what is measured.
Prints seconds per run and ratios to ``after alone``, with the load average (other users of the
machine stretch every figure; compare rows of one invocation).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIT_TIME = re.compile(r"\[talker\] run folder: .* \((\d+) s\)")
QUICK = [  # training only: scoring and image callbacks off, no checkpoints
    "experiment=quickstart", "callbacks.evaluation=null", "callbacks.projector=null", "callbacks.images=null",
    "callbacks.checkpoint=null", "trainer.val_check_interval=100000", "resume=false",
]


def before_ref() -> str:
    added = subprocess.run(
        ["git", "log", "--diff-filter=A", "--format=%H", "--", "talker/utils/threads.py"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split()
    if not added:
        raise SystemExit("talker/utils/threads.py is not committed yet: pass --before <git ref>")
    return f"{added[-1]}^"


def unpack(ref: str, folder: Path) -> Path:
    """The tree of ``ref`` in ``folder`` (git archive: no worktree bookkeeping left behind)."""
    folder.mkdir(parents=True)
    archive = folder.with_suffix(".tar")
    subprocess.run(["git", "archive", "--format=tar", "-o", str(archive), ref], cwd=REPO, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    archive.unlink()
    return folder


def start(code: Path, work: Path, tag: str, steps: int, extra: list[str]) -> tuple[subprocess.Popen, Path]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY")}
    env.update(PYTHONPATH=str(code), TALKER_OFFLINE="1", HF_HUB_OFFLINE="1")
    log = work / f"{tag}.log"
    cmd = [sys.executable, "-m", "talker.fit", *QUICK, f"trainer.max_steps={steps}", f"paths.data_dir={work / 'data'}",
           f"run_dir={work / 'runs' / tag}", *extra]
    with open(log, "w") as out:
        process = subprocess.Popen(cmd, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
    return process, log


def measure(code: Path, work: Path, tag: str, steps: int, copies: int, extra: list[str]) -> list[float]:
    """Training seconds of ``copies`` identical runs started together."""
    runs = [start(code, work, f"{tag}-{i}", steps, extra) for i in range(copies)]
    seconds = []
    for process, log in runs:
        if process.wait() != 0:
            raise SystemExit(f"{tag}: failed, see {log}")
        found = FIT_TIME.search(log.read_text())
        seconds.append(float(found.group(1)) if found else float("nan"))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="quickstart steps per run (the whole quickstart: 2400)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--before", default=None, help="git ref of the code before the change")
    parser.add_argument("--work", type=Path, default=None, help="folder for data, runs and logs (default: temporary)")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="talker-threads-") as tmp:
        work = (args.work or Path(tmp)).resolve()
        work.mkdir(parents=True, exist_ok=True)
        before = unpack(args.before or before_ref(), Path(tmp) / "before")
        measure(REPO, work, "warmup", 1, 1, [])  # generates the clip once
        cases = [
            ("before alone", before, 1, []),
            ("before pair", before, 2, []),
            ("after alone", REPO, 1, []),
            ("after pair", REPO, 2, []),
            ("after split pair", REPO, 2, [f"threads={max(1, cores // 2)}"]),
        ]
        results: dict[str, list[float]] = {name: [] for name, *_ in cases}
        loads = []
        for repeat in range(args.repeats):
            for name, code, copies, extra in cases:
                load = os.getloadavg()[0]
                started = time.perf_counter()
                seconds = measure(code, work, f"{name.replace(' ', '_')}-{repeat}", args.steps, copies, extra)
                results[name] += seconds
                loads.append(load)
                print(f"  {name}: {', '.join(f'{s:.0f}' for s in seconds)} s training "
                      f"({time.perf_counter() - started:.0f} s wall, load average {load:.1f} at start)", flush=True)
    reference = sum(results["after alone"]) / len(results["after alone"])
    print(f"\n{args.steps} quickstart steps, {cores} cores, {args.repeats} repeat(s); "
          f"load average {min(loads):.1f}-{max(loads):.1f} at the starts")
    print(f"{'case':<18} {'seconds (mean)':>15} {'s/100 steps':>12} {'x after alone':>14}")
    for name, seconds in results.items():
        mean = sum(seconds) / len(seconds)
        print(f"{name:<18} {mean:>15.1f} {100 * mean / args.steps:>12.1f} {mean / reference:>14.2f}")


if __name__ == "__main__":
    main()
