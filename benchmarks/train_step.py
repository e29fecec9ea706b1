"""Training-step throughput: the real head-stage step (occupancy updates, render, loss, backward,
AdamW, learning-rate schedule) timed outside Lightning, eager and fast path side by side.

    python benchmarks/train_step.py                                   # experiment=quickstart
    python benchmarks/train_step.py arm=rad_nerf                      # RAD-NeRF's audio arm on it
    python benchmarks/train_step.py --profile 16 --rows 25            # torch.profiler table of 16 steps

Any other argument is a config override after ``experiment=quickstart``. The model is built once,
trained ``--warmup`` steps (past the first occupancy update, so that samples per ray are those of
a pruned grid), then copied: the eager copy and the fast copy (``model.head.compile=true``) run
the same batches, alternately step by step, so that a machine under load slows both alike. Only
the ratio of the two medians means anything on a loaded machine.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
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

    def copy(self) -> StepRunner:
        """An independent runner in the same state (parameters, buffers, optimiser moments)."""
        twin = StepRunner(copy.deepcopy(self.module), self.conditions)
        twin.optimizer.load_state_dict(copy.deepcopy(self.optimizer.state_dict()))
        twin.scheduler.load_state_dict(self.scheduler.state_dict())
        return twin


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
    for key, name in (("_InterpolateBackward", "hash-grid backward (scatter into the tables)"),):
        if key in events:
            row(name, events[key].cpu_time_total)
    syncs = {k: events[k].count / steps for k in ("aten::_local_scalar_dense", "aten::nonzero") if k in events}
    rows.append("")
    rows.append("host synchronisations per step: " + ", ".join(f"{k} {v:.1f}" for k, v in syncs.items()))
    return "\n".join(rows)


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warmup", type=int, default=40, help="steps trained before timing (first occupancy update: 32)")
    parser.add_argument("--steps", type=int, default=32, help="timed steps per path")
    parser.add_argument("--fast-warmup", type=int, default=3, help="untimed steps of each copy (compilation)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--profile", type=int, default=0, help="profile this many steps of the eager path instead")
    parser.add_argument("--rows", type=int, default=30, help="rows of the profile table")
    args, overrides = parser.parse_known_args(argv)

    runner, batches = build(overrides, args.threads)
    step = 0
    started = time.perf_counter()
    for _ in range(args.warmup):
        runner.step(step, next(batches))
        step += 1
    print(f"warm-up: {args.warmup} steps in {time.perf_counter() - started:.1f} s; "
          f"overrides: {' '.join(overrides) or '(none)'}; threads {torch.get_num_threads()}")

    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        names = label_parts(runner.module)
        todo = [next(batches) for _ in range(args.profile)]
        with profile(activities=[ProfilerActivity.CPU], record_shapes=False, with_stack=False) as prof:
            for batch in todo:
                with torch.profiler.record_function("## step"):
                    runner.step(step, batch)
                step += 1
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
        print(breakdown(prof, names, args.profile))
        return

    eager = runner.copy()
    fast = runner.copy()
    fast.module.head.use_fast_path(True)
    todo = [next(batches) for _ in range(args.fast_warmup + args.steps)]
    times: dict[str, list[float]] = {"eager": [], "fast": []}
    losses: dict[str, list[float]] = {"eager": [], "fast": []}
    for i, batch in enumerate(todo):
        for name, path in (("eager", eager), ("fast", fast)):
            loss = torch.empty(())

            def run() -> None:
                nonlocal loss
                loss = path.step(step + i, batch)

            seconds = timed(run)
            if i >= args.fast_warmup:
                times[name].append(seconds)
            losses[name].append(float(loss))
    median = {name: statistics.median(t) for name, t in times.items()}
    gap = max(abs(a - b) / max(abs(a), 1e-12) for a, b in zip(losses["eager"], losses["fast"]))
    print(f"{args.steps} steps after {args.warmup} + {args.fast_warmup}, alternating eager / fast:")
    for name in ("eager", "fast"):
        print(f"  {name:5s}: median {median[name] * 1e3:7.1f} ms/step  ({1 / median[name]:.2f} steps/s)")
    print(f"  ratio eager/fast: {median['eager'] / median['fast']:.2f}x; largest relative loss gap {gap:.2e}")


if __name__ == "__main__":
    main()
