"""Does the synthetic clip's mouth depend on the condition? Two measurements on the quickstart clip.

    python benchmarks/condition_matters.py [--keep-data] [--runs DIR] [--parallel] [--overrides k=v ...]

1. Data: per-pixel standard deviation across frames of head-aligned mouth crops (from each frame's
   landmarks), against crops of the same size on the cheek and between the brows, which change only
   with pose (and blinks, at the brows' edge).
2. Model: the quickstart trained twice through the real entry point, once with its landmark condition
   and once with ``data.zero_condition=true`` (all-zero conditions in training and evaluation): held-out
   PSNR on the full frame, the face box and the mouth box, side by side, and how far the rendered
   held-out mouths move with the true ones (ratio of their pixel std over frames in head-aligned
   mouth crops; correlation of the crops' brightness, which drops as the mouth opens).
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


def following(run: Path, root: Path) -> tuple[float, float]:
    """How the rendered held-out mouths move with the ground truth's: the ratio of their per-pixel
    std over frames, and the correlation of the crops' mean brightness (an open mouth is darker)."""
    frames = json.loads((root / "transforms_val.json").read_text())["frames"]
    gt, rendered = [], []
    for frame in frames:
        i = frame["img_id"]
        lms = np.loadtxt(root / "ori_imgs" / f"{i}.lms")
        half = 0.2 * (lms[45, 0] - lms[36, 0])
        cx, cy = lms[MOUTH].mean(0) + 0.5
        box = (cx - half, cy - half, cx + half, cy + half)
        for out, path in ((gt, root / "gt_imgs" / f"{i}.jpg"), (rendered, run / "renders" / f"{i}.png")):
            image = Image.open(path).convert("RGB").resize((16, 16), Image.BILINEAR, box=box)
            out.append(np.asarray(image, dtype=np.float64) / 255)
    gt, rendered = np.stack(gt), np.stack(rendered)
    ratio = rendered.std(0).mean() / gt.std(0).mean()
    return float(ratio), float(np.corrcoef(gt.mean((1, 2, 3)), rendered.mean((1, 2, 3)))[0, 1])


def variation(root: Path) -> dict[str, float]:
    mouth = crops(root, lambda lms: lms[MOUTH].mean(0))
    cheek = crops(root, lambda lms: (lms[2] + lms[31]) / 2)  # between the jaw line and the nose
    forehead = crops(root, lambda lms: (lms[19] + lms[24]) / 2)  # between the brows
    return {
        k: float(c.std(0).mean()) for k, c in (("mouth", mouth), ("cheek", cheek), ("forehead", forehead))
    }


def launch(run_root: Path, data: Path, overrides: list[str]) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "talker.fit",
        "experiment=quickstart",
        f"paths.runs_dir={run_root}",
        f"paths.data_dir={data}",
        *overrides,
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def finish(process: subprocess.Popen, run_root: Path) -> tuple[dict, Path]:
    if process.wait() != 0:
        raise SystemExit(f"training failed: {' '.join(process.args)}")
    metrics_file = next(run_root.rglob("metrics.json"))
    return json.loads(metrics_file.read_text())["metrics"], metrics_file.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--keep-data", action="store_true", help="reuse ./data instead of a fresh data folder"
    )
    parser.add_argument("--overrides", nargs="*", default=[], help="extra overrides for both runs")
    parser.add_argument("--runs", type=Path, help="keep the two run folders here (default: a temporary folder)")
    parser.add_argument("--parallel", action="store_true", help="train the two arms at the same time")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path("data").resolve() if args.keep_data else Path(tmp) / "data"
        runs = args.runs.resolve() if args.runs else Path(tmp)
        cfg = compose_config(["experiment=quickstart", f"paths.data_dir={data}", *args.overrides])
        root = instantiate(cfg.data.synthetic, "data.synthetic").ensure(data)
        stats = variation(root)
        control = max(stats["cheek"], stats["forehead"])
        print(
            f"dataset {root.name}: pixel std over frames of head-aligned crops: mouth {stats['mouth']:.4f}, "
            f"cheek {stats['cheek']:.4f}, forehead {stats['forehead']:.4f} (mouth / larger control {stats['mouth'] / control:.1f})"
        )
        results, follow = {}, {}
        arms = {"landmarks": [], "zeroed": ["data.zero_condition=true"]}
        start = time.perf_counter()
        running = {}
        for arm, extra in arms.items():
            running[arm] = launch(runs / arm, data, [*args.overrides, *extra])
            if not args.parallel:
                results[arm], run = finish(running[arm], runs / arm)
                follow[arm] = following(run, root)
                print(f"trained {arm} ({run}), {time.perf_counter() - start:.0f} s so far")
        if args.parallel:
            for arm in arms:
                results[arm], run = finish(running[arm], runs / arm)
                follow[arm] = following(run, root)
            print(f"trained both arms side by side in {time.perf_counter() - start:.0f} s")
    keys = [k for k in ("psnr", "psnr_face", "psnr_mouth") if k in results["landmarks"]]
    header = "".join(f"{k:>12s}" for k in keys) + "  mouth std ratio  brightness corr"
    print(f"{'held-out':12s}{header}")
    for arm, metrics in results.items():
        row = "".join(f"{metrics[k]:12.2f}" for k in keys)
        print(f"{arm:12s}{row}{follow[arm][0]:17.2f}{follow[arm][1]:17.2f}")
    gap = {k: results["landmarks"][k] - results["zeroed"][k] for k in keys}
    print(f"{'difference':12s}" + "".join(f"{gap[k]:12.2f}" for k in keys) + "   (dB, landmarks - zeroed)")


if __name__ == "__main__":
    main()
