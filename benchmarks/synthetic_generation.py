"""Wall time of the synthetic generator: a 10 s (250-frame) clip at 256 x 256 (target: well under 60 s on 2 cores).

    python benchmarks/synthetic_generation.py [--resolution 256] [--frames 250] [--workers 0]

Generates into a temporary folder (nothing is cached) and prints the time, the frame rate and the
size on disk next to the target.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from talker.data.synthetic import SyntheticClip

TARGET_S = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--frames", type=int, default=250)
    parser.add_argument("--workers", type=int, default=0, help="0: automatic (one per core, at most 4)")
    parser.add_argument("--identity", default="ada")
    args = parser.parse_args()
    clip = SyntheticClip(
        num_frames=args.frames, resolution=args.resolution, identity=args.identity, workers=args.workers
    )
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        folder = clip.ensure(tmp)
        wall = time.perf_counter() - start
        size = sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
    print(
        f"{args.frames} frames at {args.resolution} px ({clip.worker_count()} workers, {os.cpu_count()} cores): "
        f"{wall:.1f} s, {args.frames / wall:.1f} frames/s, {size / 2**20:.0f} MiB; "
        f"target {TARGET_S:.0f} s for 250 frames at 256 px (ratio {wall / TARGET_S:.2f})"
    )


if __name__ == "__main__":
    main()
