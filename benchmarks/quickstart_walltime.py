"""Wall time of the quickstart, from a clean run folder to metrics.json (target: <= 300 s on 2 cores).

    python benchmarks/quickstart_walltime.py [--keep-data]

Runs the real entry point in a subprocess, in a temporary runs folder. By default the synthetic
clip is generated too (as on a fresh machine); --keep-data reuses ./data.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 300.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep-data", action="store_true", help="reuse ./data instead of a fresh data folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path("data").resolve() if args.keep_data else Path(tmp) / "data"
        cmd = [sys.executable, "-m", "talker.fit", "experiment=quickstart", f"paths.runs_dir={tmp}/runs", f"paths.data_dir={data}"]
        load_before = os.getloadavg()[0]
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
        metrics = json.loads(next(Path(tmp, "runs").rglob("metrics.json")).read_text())["metrics"]
    print(f"quickstart wall time: {wall:.0f} s (target {TARGET_S:.0f} s, ratio {wall / TARGET_S:.2f})")
    # On a machine shared with other jobs the wall time stretches; the CPU time much less so.
    print(f"CPU time {cpu:.0f} s on {os.cpu_count()} cores; load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    print("held-out: " + ", ".join(f"{k}={v:.2f}{' dB' if k.startswith('psnr') else ''}" for k, v in metrics.items()))


if __name__ == "__main__":
    main()
