"""The measurements of the one-shot GPU check (benchmarks/gpu/run_all.sh), one part per call, each
written to its own JSON file; ``combine`` merges them into one file and prints them side by side.

    python benchmarks/gpu/measure.py frames  --out results/frames.json    # ms per frame, both paths
    python benchmarks/gpu/measure.py train   --out results/train.json     # training iterations per second
    python benchmarks/gpu/measure.py profile --out results/profile.json   # Table 5's module profile
    python benchmarks/gpu/measure.py combine --out results/gpu_results.json results/*.json
    python benchmarks/gpu/measure.py all --device cpu --quick --out /tmp/r.json   # every part, tiny, on CPU

Parts (``--device cuda`` by default; times with ``torch.cuda.synchronize`` around each frame or step):

- ``frames``: ms per head+torso frame at ``--size`` (450) for the R2-Talker, RAD-NeRF and ER-NeRF
  fields at their paper sizes (``system=<name>``), on the training path (``head.render_frame``) and
  the fast path (``talker.inference.fast_render.frame_renderer``): the median over ``--frames`` frames
  of a fixed sequence (the synthetic clip's training frames, cycled) after ``--warmup`` frames, with
  the fast frame's PSNR against the training frame. The weights are untrained; the occupancy grid is
  a head-sized ellipsoid (``benchmarks/render_frame.py``), so every ray through the head takes up
  to ``max_steps`` samples: the marcher's worst case, not a trained head's early termination.
- ``train``: training iterations per second of the real head-stage step (``benchmarks/train_step.py``'s
  ``StepRunner``: occupancy updates, render, loss, backward, AdamW, schedule) at the paper's ray batch,
  ``--rays`` (65536: the reference codes' ``--num_rays`` default, 4096 x 16), for each system; the
  240K-step schedule projected from it.
- ``profile``: Table 5's module-level profile (``talker.evaluation.speed.profile_head``:
  conditioning, then rendering, on the training path) of each system at ``--size``.

``--quick`` shrinks everything (test sizes: 32 px frames, tiny nets, 128 rays, a few frames and
steps) so that ``all --device cpu --quick`` runs end to end in seconds: what tests/benchmarks/
test_gpu_measure.py checks on a machine without a GPU.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where it is used: `combine` runs without it, in a blink
    import torch

REPO = Path(__file__).resolve().parents[2]
SYSTEMS = ("r2talker", "rad_nerf", "er_nerf")
PARTS = ("frames", "train", "profile")
PAPER_RAYS = 4096 * 16  # the reference codes' rays per training step
PAPER_STEPS = 240_000  # R2-Talker's schedule (Table 6)
# --quick: the tests' sizes (talker.config.TINY_NETWORK, imported where used so that `combine` needs no
# talker) and a small torso; each applied where a system's config has the key.
QUICK_TORSO = [
    "model.head.torso.grid.num_levels=2",
    "model.head.torso.grid.log2_hashmap_size=10",
    "model.head.torso.hidden_dim=8",
    "model.head.torso.deform_hidden=8",
]


def _load(name: str) -> Any:
    """A sibling benchmark script as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Setting:
    """What every part shares: device, sizes, where the synthetic clip is cached."""

    def __init__(self, args: argparse.Namespace) -> None:
        import torch

        self.device = torch.device(args.device)
        self.quick = args.quick
        self.size = args.size if args.size else (32 if args.quick else 450)
        self.frames = args.frames if args.frames else (2 if args.quick else 20)
        self.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
        self.steps = args.steps if args.steps else (2 if args.quick else 20)
        self.rays = args.rays if args.rays else (128 if args.quick else PAPER_RAYS)
        self.data_dir = args.data_dir
        self._configs: dict[str, Any] = {}
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise SystemExit("measure: --device cuda, but torch.cuda.is_available() is false (use --device cpu)")

    def config(self, system: str) -> Any:
        """System ``system``'s config at this setting's sizes (composed once per system: composing
        takes seconds)."""
        from omegaconf import OmegaConf

        from talker.config import TINY_NETWORK, compose_config

        if system not in self._configs:
            sizes = []
            if self.quick:  # each test size where the system's config has the key (strategies differ)
                full = compose_config([f"system={system}"])
                quick = [*TINY_NETWORK, *QUICK_TORSO]
                sizes = [o for o in quick if OmegaConf.select(full, o.split("=", 1)[0], default=None) is not None]
            self._configs[system] = compose_config([
                f"system={system}", *sizes, f"paths.data_dir={self.data_dir}", f"data.num_rays={self.rays}",
                f"data.synthetic.resolution={self.size}", f"data.synthetic.num_frames={8 if self.quick else 12}",
                "data.synthetic.val_fraction=0.25",
            ])
        return self._configs[system]

    def sync(self) -> None:
        if self.device.type == "cuda":
            import torch

            torch.cuda.synchronize(self.device)

    def timed(self, fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
        """``fn(*args)`` and its milliseconds (the device's queue drained before and after)."""
        self.sync()
        start = time.perf_counter()
        out = fn(*args)
        self.sync()
        return out, (time.perf_counter() - start) * 1000.0


def _to(value: Any, device: torch.device) -> Any:
    from talker.evaluation.speed import _to as to

    return to(value, device)


def untrained_head(setting: Setting, system: str) -> tuple[Any, Any]:
    """System ``system``'s module with untrained weights on the device, prepared on the clip's training
    frames, its occupancy a head proxy and its torso on; and the datamodule."""
    import torch

    from talker.config import instantiate

    cfg = setting.config(system)
    datamodule = instantiate(cfg.data, "data")
    datamodule.prepare_data()
    datamodule.setup("fit")
    torch.manual_seed(0)
    module = instantiate(cfg.model, "model").to(setting.device).eval()
    head = module.head
    head.prepare(datamodule.train_conditions())
    _load("render_frame").occupy_head_proxy(head.occupancy)
    if head.torso is not None:  # a head+torso frame, as the issue times it
        head.torso_trained.fill_(True)
    return head, datamodule


def frame_sequence(setting: Setting, datamodule: Any) -> list[dict[str, Any]]:
    from talker.data.datamodule import Frames

    frames = Frames(datamodule.train_split, datamodule.conditions)
    return [_to(frames[i], setting.device) for i in range(len(frames))]


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1.0 / max(float(((a.float() - b.float()) ** 2).mean()), 1e-20))


def measure_frames(setting: Setting) -> dict[str, Any]:
    import torch

    with torch.no_grad():
        return _measure_frames(setting)


def _measure_frames(setting: Setting) -> dict[str, Any]:
    from talker.inference.fast_render import frame_renderer


    results: dict[str, Any] = {}
    for system in SYSTEMS:
        head, datamodule = untrained_head(setting, system)
        sequence = frame_sequence(setting, datamodule)
        paths = {"training": head.render_frame, "fast": frame_renderer(head)}
        times: dict[str, list[float]] = {name: [] for name in paths}
        last: dict[str, Any] = {}
        for i in range(setting.warmup + setting.frames):
            frame = sequence[i % len(sequence)]
            for name, render in paths.items():  # alternately, so that a loaded machine slows both alike
                last[name], ms = setting.timed(render, frame)
                if i >= setting.warmup:
                    times[name].append(ms)
        training, fast = (statistics.median(times[name]) for name in paths)
        results[system] = {
            "training_ms": training,
            "fast_ms": fast,
            "fast_speedup": training / fast,
            "fast_psnr_vs_training_db": psnr(last["fast"].rgb, last["training"].rgb),
            "evaluated_per_frame": {name: int(out.num_evaluated) for name, out in last.items()},
        }
    return {"size": setting.size, "frames": setting.frames, "warmup": setting.warmup, "systems": results}


def measure_train(setting: Setting) -> dict[str, Any]:
    import torch

    from talker.config import instantiate


    StepRunner = _load("train_step").StepRunner
    results: dict[str, Any] = {}
    for system in SYSTEMS:
        cfg = setting.config(system)
        torch.manual_seed(cfg.seed)
        datamodule = instantiate(cfg.data, "data")
        datamodule.prepare_data()
        datamodule.setup("fit")
        module = instantiate(cfg.model, "model").to(setting.device)
        module.train()
        conditions = [_to(c, setting.device) for c in datamodule.train_conditions()]
        module.head.prepare(conditions)
        split = datamodule.train_split
        module.head.occupancy.mark_unseen(split.poses, split.intrinsics, split.width, split.height)
        runner = StepRunner(module, conditions)
        batches = _batches(datamodule.train_dataloader(), setting.device)
        warmup = max(setting.warmup, int(module.head.occupancy_warmup) + 1)  # past the first occupancy update
        times = []
        for step in range(warmup + setting.steps):
            batch = next(batches)
            loss, ms = setting.timed(runner.step, step, batch)
            if step >= warmup:
                times.append(ms)
        if not math.isfinite(float(loss)):
            raise RuntimeError(f"train: system={system}: loss {float(loss)} at step {step}")
        ms = statistics.median(times)
        results[system] = {
            "step_ms": ms,
            "iterations_per_s": 1000.0 / ms,
            "projected_240k_minutes": PAPER_STEPS * ms / 1000.0 / 60.0,
        }
    return {"rays_per_step": setting.rays, "steps": setting.steps, "systems": results}


def _batches(loader: Any, device: torch.device) -> Iterator[dict[str, Any]]:
    while True:
        for batch in loader:
            yield _to(batch, device)
        loader.epoch, loader.position = loader.epoch + 1, 0


def measure_profile(setting: Setting) -> dict[str, Any]:
    from talker.evaluation.speed import profile_head
    from talker.metrics.speed import SpeedProfile

    results: dict[str, Any] = {}
    for system in SYSTEMS:
        head, datamodule = untrained_head(setting, system)
        profile = SpeedProfile(resolution=setting.size, frames=setting.frames, warmup=setting.warmup)
        results[system] = profile_head(head, datamodule.train_split, datamodule.conditions, profile)
    return {"systems": results}


MEASURE: dict[str, Callable[[Setting], dict[str, Any]]] = {
    "frames": measure_frames, "train": measure_train, "profile": measure_profile,
}


def environment(device: torch.device) -> dict[str, Any]:
    import torch

    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.machine()})",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
    }


def combine(files: list[Path]) -> dict[str, Any]:
    """One result from the parts' files; a part whose file is missing (it failed or timed out) is
    recorded as such, never left out silently."""
    merged: dict[str, Any] = {}
    for part in PARTS:
        found = [f for f in files if f.stem == part and f.is_file()]
        merged[part] = json.loads(found[0].read_text()) if found else {"error": f"{part}.json missing: the part failed or timed out"}
    for f in files:
        if f.stem not in PARTS and f.is_file():  # e.g. tests.json from run_all.sh
            merged[f.stem] = json.loads(f.read_text())
    return merged


def report(result: Mapping[str, Any]) -> str:
    """The parts side by side, as text."""
    lines = []
    frames, train, profile = (result.get(part, {}) for part in PARTS)
    if "systems" in frames:
        lines += [f"ms per {frames['size']} x {frames['size']} head+torso frame (median of {frames['frames']})",
                  f"{'system':10s} {'training':>10s} {'fast':>10s} {'speed-up':>9s} {'PSNR':>8s}"]
        for name, r in frames["systems"].items():
            lines.append(f"{name:10s} {r['training_ms']:10.2f} {r['fast_ms']:10.2f} {r['fast_speedup']:8.2f}x "
                         f"{r['fast_psnr_vs_training_db']:7.1f}")
    if "systems" in train:
        lines += [f"training at {train['rays_per_step']} rays per step",
                  f"{'system':10s} {'ms/step':>10s} {'it/s':>8s} {'240K steps (min)':>17s}"]
        for name, r in train["systems"].items():
            lines.append(f"{name:10s} {r['step_ms']:10.2f} {r['iterations_per_s']:8.2f} {r['projected_240k_minutes']:17.1f}")
    if "systems" in profile:
        lines += ["Table 5 profile (training path), ms", f"{'system':10s} {'conditioning':>13s} {'render':>10s} {'fps':>8s}"]
        for name, r in profile["systems"].items():
            stages = r["stages_ms"]
            lines.append(f"{name:10s} {stages['conditioning']:13.2f} {stages['render']:10.2f} {r['fps']:8.2f}")
    for part in PARTS:
        if "error" in result.get(part, {}):
            lines.append(f"{part}: {result[part]['error']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=[*PARTS, "all", "combine"])
    parser.add_argument("files", nargs="*", type=Path, help="combine: the parts' JSON files")
    parser.add_argument("--out", type=Path, required=True, help="the JSON file written")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="test sizes: seconds on a CPU")
    parser.add_argument("--size", type=int, default=0, help="frame side in px (default 450; quick 32)")
    parser.add_argument("--frames", type=int, default=0, help="timed frames (default 20; quick 2)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed frames or steps first (default 3; quick 1)")
    parser.add_argument("--steps", type=int, default=0, help="timed training steps (default 20; quick 2)")
    parser.add_argument("--rays", type=int, default=0, help=f"rays per training step (default {PAPER_RAYS}; quick 128)")
    parser.add_argument("--data-dir", type=Path, default=REPO / ".gpu-check" / "data", help="synthetic clip cache")
    args = parser.parse_intermixed_args(argv)  # combine's files may follow --out
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.part == "combine":
        result = combine(args.files)
    else:
        setting = Setting(args)
        parts = PARTS if args.part == "all" else (args.part,)
        result = {part: MEASURE[part](setting) for part in parts}
        for part in parts:
            result[part]["environment"] = environment(setting.device)
        if args.part != "all":
            result = result[args.part]
    args.out.write_text(json.dumps(result, indent=2))
    print(report(result if args.part in ("all", "combine") else {args.part: result}))


if __name__ == "__main__":
    main(sys.argv[1:])
