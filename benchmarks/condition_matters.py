"""Does the synthetic clip's mouth depend on the condition? Two measurements on the quickstart clip.

    python benchmarks/condition_matters.py [--keep-data] [--overrides k=v ...]

1. Data: per-pixel standard deviation across frames of head-aligned mouth crops (from each frame's
   landmarks), against crops of the same size on the cheek and between the brows, which change only
   with pose (and blinks, at the brows' edge).
2. Model: the quickstart trained twice through the real entry point, once with its landmark condition
   and once with ``data.zero_condition=true`` (all-zero conditions in training and evaluation): held-out
   PSNR on the full frame, the face box and the mouth box, side by side.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from talker.config import compose_config, instantiate
from talker.data.landmarks import MOUTH


def crops(root: Path, centre_of, size: int = 24) -> np.ndarray:
    """``[N, size, size, 3]`` square crops of every frame centred where ``centre_of(lms)`` says, 0.4 eye-widths (about a mouth) wide."""
    out = []
    for i in sorted(int(p.stem) for p in (root / "gt_imgs").glob("*.jpg")):
        lms = np.loadtxt(root / "ori_imgs" / f"{i}.lms")
        half = 0.2 * (lms[45, 0] - lms[36, 0])  # eye corners do not move with the expression
        cx, cy = centre_of(lms)
        box = (cx - half + 0.5, cy - half + 0.5, cx + half + 0.5, cy + half + 0.5)
        image = Image.open(root / "gt_imgs" / f"{i}.jpg").convert("RGB")
        out.append(np.asarray(image.resize((size, size), Image.BILINEAR, box=box), dtype=np.float64) / 255)
    return np.stack(out)


def variation(root: Path) -> dict[str, float]:
    mouth = crops(root, lambda lms: lms[MOUTH].mean(0))
    cheek = crops(root, lambda lms: (lms[2] + lms[31]) / 2)  # between the jaw line and the nose
    forehead = crops(root, lambda lms: (lms[19] + lms[24]) / 2)  # between the brows
    return {
        k: float(c.std(0).mean()) for k, c in (("mouth", mouth), ("cheek", cheek), ("forehead", forehead))
    }


def train(run_root: Path, data: Path, overrides: list[str]) -> tuple[dict, float]:
    cmd = [
        sys.executable,
        "-m",
        "talker.fit",
        "experiment=quickstart",
        f"paths.runs_dir={run_root}",
        f"paths.data_dir={data}",
        *overrides,
    ]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = json.loads(next(run_root.rglob("metrics.json")).read_text())["metrics"]
    return metrics, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--keep-data", action="store_true", help="reuse ./data instead of a fresh data folder"
    )
    parser.add_argument("--overrides", nargs="*", default=[], help="extra overrides for both runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path("data").resolve() if args.keep_data else Path(tmp) / "data"
        cfg = compose_config(["experiment=quickstart", f"paths.data_dir={data}", *args.overrides])
        root = instantiate(cfg.data.synthetic, "data.synthetic").ensure(data)
        stats = variation(root)
        control = max(stats["cheek"], stats["forehead"])
        print(
            f"dataset {root.name}: pixel std over frames of head-aligned crops: mouth {stats['mouth']:.4f}, "
            f"cheek {stats['cheek']:.4f}, forehead {stats['forehead']:.4f} (mouth / larger control {stats['mouth'] / control:.1f})"
        )
        results = {}
        for arm, extra in (("landmarks", []), ("zeroed", ["data.zero_condition=true"])):
            results[arm] = train(Path(tmp) / arm, data, [*args.overrides, *extra])
            print(f"trained {arm} in {results[arm][1]:.0f} s")
    keys = [k for k in ("psnr", "psnr_face", "psnr_mouth") if k in results["landmarks"][0]]
    print(f"{'held-out':12s}" + "".join(f"{k:>12s}" for k in keys))
    for arm, (metrics, _) in results.items():
        print(f"{arm:12s}" + "".join(f"{metrics[k]:12.2f}" for k in keys))
    gap = {k: results["landmarks"][0][k] - results["zeroed"][0][k] for k in keys}
    print(f"{'difference':12s}" + "".join(f"{gap[k]:12.2f}" for k in keys) + "   (dB, landmarks - zeroed)")


if __name__ == "__main__":
    main()
