"""Training-step throughput: the real head-stage step (occupancy updates, render, loss, backward,
AdamW, learning-rate schedule) timed outside Lightning, eager and fast path side by side.

    python benchmarks/train_step.py --eager ee5137e                   # experiment=quickstart, this
                                                                      # checkout against a revision
    python benchmarks/train_step.py --eager ee5137e arm=rad_nerf      # RAD-NeRF's audio arm
    python benchmarks/train_step.py --profile 16                      # where the time of 16 steps goes
    python benchmarks/train_step.py --compile field                   # torch.compile of the fast path's field

Any other argument is a config override after ``experiment=quickstart``. The eager and the fast
path are two worker processes, each the code of a git revision (``--eager`` / ``--fast``; default:
this checkout) with its own config overrides (``--eager-overrides`` / ``--fast-overrides``). Each
builds the same model from the same seed, trains ``--warmup`` steps (past the first occupancy
update, so that samples per ray are those of a pruned grid), then both run the same batches,
alternately step by step, so that a machine under load slows both alike: only the ratio of the two
medians means anything on a loaded machine. Their losses are printed side by side as a check that
the two paths compute the same thing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.profiler import record_function

from talker.config import compose_config, instantiate
from talker.modules.head import HeadModule
from talker.stages.base import StepContext


class StepRunner:
    """One HeadModule, its optimiser and scheduler: :meth:`step` does what Lightning's loop does for
    a training step (``on_train_batch_start``, ``training_step``, backward, optimiser and scheduler
    steps), without Lightning's logging."""

    def __init__(self, module: HeadModule, conditions: list[dict[str, torch.Tensor]]) -> None:
        self.module, self.conditions = module, conditions
        config = module.configure_optimizers()
        self.optimizer = config["optimizer"]
        self.scheduler = config["lr_scheduler"]["scheduler"]
        self.logged: dict[str, Any] = {}

    def log(self, name: str, value: Any, **options: Any) -> None:
        self.logged[name] = value

    def step(self, step: int, batch: dict[str, Any]) -> torch.Tensor:
        module, head = self.module, self.module.head
        stage = module.stages[module.plan.stage(step)]
        head.on_train_step(module.plan.paper(step))
        stage.on_step_start(head, step)
        if stage.updates_occupancy and head.occupancy_due(step):
            head.update_occupancy(self.conditions)
        with record_function("## loss (forward)"):
            loss = stage.training_step(head, batch, StepContext(step=step, plan=module.plan, log=self.log))
        self.optimizer.zero_grad(set_to_none=True)
        with record_function("## backward"):
            loss.backward()
        with record_function("## optimiser"):
            self.optimizer.step()
            self.scheduler.step()
        return loss.detach()


def build(overrides: Sequence[str], threads: int = 1) -> tuple[StepRunner, Iterator[dict[str, Any]]]:
    """The quickstart's module and loader (plus ``overrides``), set up as ``fit`` sets them up."""
    cfg = compose_config(["experiment=quickstart", *overrides])
    torch.set_num_threads(threads)
    L.seed_everything(cfg.seed, verbose=False)
    datamodule = instantiate(cfg.data, "data")
    module: HeadModule = instantiate(cfg.model, "model")
    datamodule.setup("fit")
    conditions = datamodule.train_conditions()
    module.head.prepare(conditions)
    split = datamodule.train_split
    module.head.occupancy.mark_unseen(split.poses, split.intrinsics, split.width, split.height)
    loader = datamodule.train_dataloader()

    def batches() -> Iterator[dict[str, Any]]:
        while True:
            yield from loader
            loader.epoch, loader.position = loader.epoch + 1, 0

    return StepRunner(module, conditions), batches()


def label(obj: Any, attr: str, name: str) -> None:
    """Wrap ``obj.attr`` (a method or a module-level function) in a profiler range ``## name``."""
    inner = getattr(obj, attr)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with record_function(f"## {name}"):
            return inner(*args, **kwargs)

    setattr(obj, attr, wrapper)


def label_parts(module: HeadModule) -> list[str]:
    """Profiler ranges around the parts of a step (the profile's breakdown); returns their names."""
    from talker.rendering import renderer

    head = module.head
    parts = {
        "occupancy update": (head, "update_occupancy"),
        "conditioning (encode + fusion)": (head.conditioning, "forward"),
        "ray marching": (head, "sampler"),
        "field (all per-point work)": (head.field, "forward"),
        "positional hash grid (forward)": (head.field.encoder, "forward"),
        "sigma net": (head.field.sigma_net, "forward"),
        "colour net": (head.field.color_net, "forward"),
        "compositing": (renderer, "weights_and_transmittance"),
        "compositing (colour)": (renderer, "composite"),
        "regulariser": (head.conditioning, "regularization"),
    }
    fusion = head.conditioning.fusion
    if hasattr(fusion, "grid"):
        parts["ambient grid (forward)"] = (fusion.grid, "forward")
        parts["ambient net"] = (fusion.ambient_net, "forward")
    for name, (obj, attr) in parts.items():
        label(obj, attr, name)
    return [*parts, "loss (forward)", "backward", "optimiser"]


def breakdown(prof: Any, names: list[str], steps: int) -> str:
    """Markdown table: ms per step and share of the step of each labelled part, the backward's
    hash-grid scatter, and host synchronisations per step."""
    events = {e.key: e for e in prof.key_averages()}
    total = events["## step"].cpu_time_total
    rows = ["| part | ms/step | % of step |", "|---|---:|---:|"]

    def row(name: str, micros: float) -> None:
        rows.append(f"| {name} | {micros / steps / 1e3:.1f} | {100 * micros / total:.1f} |")

    row("whole step", total)
    for name in names:
        if f"## {name}" in events:
            row(name, events[f"## {name}"].cpu_time_total)
    for key, name in (("_InterpolateCornersBackward", "hash-grid backward (scatter into the tables)"),):
        if key in events:
            row(name, events[key].cpu_time_total)
    syncs = {k: events[k].count / steps for k in ("aten::_local_scalar_dense", "aten::nonzero") if k in events}
    rows.append("")
    rows.append("host synchronisations per step: " + ", ".join(f"{k} {v:.1f}" for k, v in syncs.items()))
    return "\n".join(rows)


def compile_field(runner: StepRunner, what: str) -> None:
    """``torch.compile`` (``dynamic=True``: samples per step vary) of the field's per-point work:
    ``mlp`` the sigma and colour nets, ``field`` the whole ``HeadField.forward`` (hash-grid lookup,
    with its graph breaks, and both nets). Compilation happens in the first steps after this."""
    field = runner.module.head.field
    if what == "mlp":
        for net in (field.sigma_net, field.color_net):
            net.forward = torch.compile(net.forward, dynamic=True)  # type: ignore[method-assign]
    elif what == "field":
        field.forward = torch.compile(field.forward, dynamic=True)  # type: ignore[method-assign]
    else:
        raise ValueError(f"--compile must be mlp or field, got {what!r}")


def serve(runner: StepRunner, batches: Iterator[dict[str, Any]], step: int) -> None:
    """Worker loop: one training step per ``step`` line on stdin, answered ``seconds loss`` on stdout."""
    for line in sys.stdin:
        if line.strip() != "step":
            break
        batch = next(batches)
        start = time.perf_counter()
        loss = runner.step(step, batch)
        seconds = time.perf_counter() - start
        print(f"{seconds!r} {float(loss)!r}", flush=True)
        step += 1


def code_of(revision: str | None, folder: Path) -> Path:
    """The folder whose ``talker`` package a worker imports: this checkout, or ``revision`` of its
    git history extracted into ``folder``."""
    root = Path(__file__).resolve().parent.parent
    if revision is None:
        return root
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", revision, "talker", "configs", "experiments"],
        check=True, capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warmup", type=int, default=40, help="steps trained before timing (first occupancy update: 32)")
    parser.add_argument("--steps", type=int, default=32, help="timed steps per path")
    parser.add_argument("--untimed", type=int, default=3, help="steps of each path before timing (compilation)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--eager", default=None, metavar="REV", help="git revision of the eager path (default: this checkout)")
    parser.add_argument("--fast", default=None, metavar="REV", help="git revision of the fast path (default: this checkout)")
    parser.add_argument("--eager-overrides", default="", help="config overrides of the eager path only (one string)")
    parser.add_argument("--fast-overrides", default="", help="config overrides of the fast path only (one string)")
    parser.add_argument("--compile", default="", choices=["", "mlp", "field"],
                        help="torch.compile the fast path's field after warm-up (the untimed steps compile)")
    parser.add_argument("--profile", type=int, default=0, help="profile this many steps of this checkout instead")
    parser.add_argument("--rows", type=int, default=30, help="rows of the profile's operator table")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args, overrides = parser.parse_known_args(argv)

    if args.worker or args.profile:
        runner, batches = build(overrides, args.threads)
        started = time.perf_counter()
        for step in range(args.warmup):
            runner.step(step, next(batches))
        print(f"warm-up: {args.warmup} steps in {time.perf_counter() - started:.1f} s; "
              f"overrides: {' '.join(overrides) or '(none)'}; threads {torch.get_num_threads()}", file=sys.stderr)
        if args.worker:
            if args.compile:
                compile_field(runner, args.compile)
            serve(runner, batches, args.warmup)
        else:
            profile_steps(runner, batches, args.warmup, args.profile, args.rows)
        return

    with tempfile.TemporaryDirectory() as tmp:
        workers = {}
        paths = (("eager", args.eager, args.eager_overrides.split()), ("fast", args.fast, args.fast_overrides.split()))
        for name, revision, extra in paths:
            folder = Path(tmp) / name
            folder.mkdir()
            env = {**os.environ, "PYTHONPATH": str(code_of(revision, folder)), "OMP_NUM_THREADS": str(args.threads)}
            command = [sys.executable, __file__, "--worker", f"--warmup={args.warmup}", f"--threads={args.threads}",
                       *([f"--compile={args.compile}"] if name == "fast" and args.compile else []), *overrides, *extra]
            workers[name] = subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            print(f"{name}: {revision or 'this checkout'} {' '.join(extra)}")
        times: dict[str, list[float]] = {name: [] for name in workers}
        untimed: dict[str, float] = {name: 0.0 for name in workers}
        losses: dict[str, list[float]] = {name: [] for name in workers}
        for i in range(args.untimed + args.steps):
            for name, worker in workers.items():  # alternate, so that load on the machine slows both alike
                assert worker.stdin is not None and worker.stdout is not None
                worker.stdin.write("step\n")
                worker.stdin.flush()
                reply = worker.stdout.readline().split()
                if len(reply) != 2:
                    raise RuntimeError(f"the {name} worker stopped (see its error above)")
                seconds, loss = map(float, reply)
                if i >= args.untimed:
                    times[name].append(seconds)
                else:
                    untimed[name] += seconds
                losses[name].append(loss)
        for worker in workers.values():
            assert worker.stdin is not None
            worker.stdin.close()
            worker.wait()
    median = {name: statistics.median(t) for name, t in times.items()}
    # The median leaves out the occupancy updates (one step in 16); the mean counts them, amortised,
    # when the timed steps span whole update periods (the defaults: 32 steps, updates at 48 and 64).
    mean = {name: statistics.fmean(t) for name, t in times.items()}
    gap = max(abs(a - b) / max(abs(a), 1e-12) for a, b in zip(losses["eager"], losses["fast"]))
    print(f"{args.steps} timed steps after {args.warmup} + {args.untimed}, eager and fast alternating, "
          f"{args.threads} thread(s); the {args.untimed} untimed steps (compilation, with --compile): "
          + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in untimed.items()))
    for name in workers:
        print(f"  {name:5s}: median {median[name] * 1e3:7.1f} ms/step  ({1 / median[name]:.2f} steps/s), "
              f"mean {mean[name] * 1e3:7.1f} ms/step")
    print(f"  ratio eager/fast: median {median['eager'] / median['fast']:.2f}x, mean {mean['eager'] / mean['fast']:.2f}x; "
          f"largest relative gap between their losses over {len(losses['eager'])} steps: {gap:.1e}")


def profile_steps(runner: StepRunner, batches: Iterator[dict[str, Any]], step: int, steps: int, rows: int) -> None:
    """torch.profiler over ``steps`` steps: the operator table and the per-part breakdown."""
    from torch.profiler import ProfilerActivity, profile

    names = label_parts(runner.module)
    todo = [next(batches) for _ in range(steps)]
    samples = []
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for batch in todo:
            with record_function("## step"):
                runner.step(step, batch)
            samples.append(float(runner.logged.get("train/samples_per_ray", float("nan"))))
            step += 1
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))
    print(breakdown(prof, names, steps))
    print(f"samples per ray: {statistics.mean(samples):.2f} (mean over the profiled steps)")


if __name__ == "__main__":
    main()
