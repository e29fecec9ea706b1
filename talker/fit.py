"""Train and evaluate: ``python -m talker.fit experiment=<name> [key=value ...]``.

An experiment file may declare a grid (``hydra.mode: MULTIRUN`` and ``hydra.sweeper.params``);
every cell is composed and checked before the first one trains, the runs the cells depend on
(``needs``: e.g. the motion stage that drives experiment=baselines' landmark heads) are trained
next, then Hydra runs the cells, each in ``runs/<name>/<overrides>``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.utilities import rank_zero_info
from omegaconf import DictConfig, OmegaConf

from talker.config import (
    NOT_IN_NAME, axis_choices, check_overrides, compose_config, config_dir, grid_axes, grid_folder, instantiate, run_folder,
    search_path_override,
)
from talker.config_checks import check_values
from talker.errors import ConfigError, one_line_errors
from talker.grid import claim_device, failed_cells
from talker.runs import RunFolder
from talker.utils.io import check_writable
from talker.utils.threads import resolve_threads, use_threads


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, L.LightningModule]:
    """Instantiate the datamodule and the LightningModule of a composed config."""
    datamodule = instantiate(cfg.data, "data")
    module = instantiate(cfg.model, "model")
    return datamodule, module


def train(cfg: DictConfig) -> Path:
    """Fit one cell into ``cfg.run_dir`` and evaluate it; returns the run folder.

    A finished run (metrics.json at ``trainer.max_steps``) is skipped when ``skip_finished``;
    with ``claim_device`` the cell first takes a GPU of its own (parallel grids on one machine).
    Values outside their declared range and a run folder that cannot be written fail here, before any work.
    """
    check_values(cfg)
    # Absolute paths, so that the run's config.yaml still works from another directory.
    for key, value in cfg.paths.items():
        cfg.paths[key] = str(Path(value).resolve())
    run_dir = Path(cfg.run_dir).resolve()
    cfg.run_dir = str(run_dir)
    check_writable(run_dir)
    try:
        cfg.threads = resolve_threads(cfg.threads, cfg.parallel_cells)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    use_threads(cfg.threads)
    if RunFolder(run_dir).check_existing(cfg) and cfg.skip_finished:
        rank_zero_info(f"[talker] {run_dir} is finished (metrics.json at step {cfg.trainer.max_steps}); skipping")
        return run_dir
    if cfg.claim_device:
        with claim_device(Path(cfg.paths.runs_dir) / ".device-locks", torch.cuda.device_count()) as index:
            cfg.trainer.devices = [index]
            rank_zero_info(f"[talker] {run_dir.name} runs on cuda:{index}")
            return _fit(cfg, run_dir)
    return _fit(cfg, run_dir)


def _fit(cfg: DictConfig, run_dir: Path) -> Path:
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule, module = build(cfg)
    callbacks = [instantiate(c, f"callbacks.{k}") for k, c in cfg.callbacks.items() if c is not None]
    loggers = [instantiate(c, f"logger.{k}") for k, c in (cfg.logger or {}).items() if c is not None]
    trainer = instantiate(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False)
    run = RunFolder(run_dir)
    if trainer.is_global_zero:
        run.write_config(cfg)
        for logger in loggers:
            logger.log_hyperparams(hparams(cfg))
    # A last.ckpt that does not load is moved aside and the newest checkpoint that loads is used.
    ckpt_path = run.resume_checkpoint(cfg.resume, report=rank_zero_info, modify=trainer.is_global_zero)
    if ckpt_path:
        rank_zero_info(f"[talker] resuming from {ckpt_path}")
    elif cfg.init_from:
        source = init_run(cfg)
        start_from(module, datamodule, source)
        rank_zero_info(f"[talker] starting from the weights of {source}")
    started = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=str(ckpt_path) if ckpt_path else None)
    # Lightning's save option, not torch.load's: the full training state (optimisers, loops), so the run can resume.
    trainer.save_checkpoint(run.checkpoint_file, weights_only=False)
    rank_zero_info(
        f"[talker] run folder: {run_dir.resolve()} ({time.perf_counter() - started:.0f} s)\n"
        f"[talker] TensorBoard: tensorboard --logdir {run_dir.parent.resolve()}"
    )
    return run_dir


def init_run(cfg: DictConfig) -> Path:
    """The run ``init_from`` names: a key of ``needs`` (e.g. ``pretrain``) or a run folder."""
    need = OmegaConf.select(cfg, f"needs.{cfg.init_from}") if "/" not in str(cfg.init_from) else None
    return Path(need.run_dir if need is not None else cfg.init_from).resolve()


def start_from(module: L.LightningModule, datamodule: L.LightningDataModule, run_dir: Path) -> None:
    """``init_from``: the weights of a trained run, except its occupancy grid (the new data's is built
    afresh), then the strategy's ``begin_fine_tuning`` with the new data's first training frame."""
    source = RunFolder(run_dir)
    state = source.checkpoint(what="init_from run")["state_dict"]
    fresh = ("head.occupancy.", "head.sweep.")
    state = {key: value for key, value in state.items() if not key.startswith(fresh)}
    hint = "start from a run of the same system and sizes"
    try:
        missing, unexpected = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shapes differ
        first = str(exc).split("\n\t")[1] if "\n\t" in str(exc) else str(exc)
        raise ConfigError(f"init_from={run_dir}: its weights do not fit this model ({first.strip()}); {hint}") from exc
    missing = [key for key in missing if not key.startswith(fresh)]
    if missing or unexpected:
        raise ConfigError(
            f"init_from={run_dir}: its weights do not fit this model (missing {missing[:3]}, unexpected {unexpected[:3]}); {hint}"
        )
    datamodule.prepare_data()
    datamodule.setup("fit")
    if getattr(datamodule, "train_split", None) is None:
        raise ConfigError(f"init_from={run_dir}: starts one person's run; data={type(datamodule).__name__} has no single training split")
    condition = datamodule.conditions.of_split(datamodule.train_split, 0)
    module.head.conditioning.begin_fine_tuning(condition)


def train_needs(cells: list[list[str]]) -> None:
    """Train the runs the cells depend on (``needs``), each once and before any cell runs, so that
    cells launched in parallel never race to train them; finished ones are reused."""
    done: set[Path] = set()
    for cell in cells:
        for name, need in (OmegaConf.select(compose_config(cell), "needs") or {}).items():
            run_dir = Path(need.run_dir).resolve()
            if run_dir in done:
                continue
            done.add(run_dir)
            if RunFolder(run_dir).is_trained():
                rank_zero_info(f"[talker] {name}: using the trained run {run_dir}")
                continue
            rank_zero_info(f"[talker] {name}: training it first (the cells need it): {' '.join(need.overrides)} -> {run_dir}")
            train(compose_config([*need.overrides, f"run_dir={run_dir}"]))


def hparams(cfg: DictConfig) -> dict:
    """Flat choices of the axes and the run's key overrides, for TensorBoard's hparams view."""
    choices = OmegaConf.select(cfg, "hydra.runtime.choices")
    overrides = OmegaConf.select(cfg, "hydra.overrides.task")
    if choices is None and HydraConfig.initialized():  # inside a Hydra run the node lives in HydraConfig
        choices, overrides = HydraConfig.get().runtime.choices, HydraConfig.get().overrides.task
    flat = axis_choices(choices)
    for item in overrides or []:  # e.g. field.position_encoder.level_dim=4 of a Table 8 grid
        key, _, value = str(item).lstrip("+~").partition("=")
        if "." in key and not key.startswith(NOT_IN_NAME):
            flat[key] = value
    flat.update({"seed": cfg.seed, "name": cfg.name})
    return flat


@hydra.main(config_path=str(config_dir()), config_name="fit", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> None:
    in_grid = HydraConfig.get().mode == RunMode.MULTIRUN
    run = RunFolder(cfg.run_dir)
    if not in_grid:
        # Expected failures (a damaged dataset, a full disk, ...) end in one line here, inside the task
        # function: raised further, they would reach the user inside Hydra's traceback.
        with one_line_errors("talker.fit"):
            train(cfg)
        run.clear_failure()
        return
    try:
        train(cfg)
        run.clear_failure()
    except Exception as exc:
        # One failed cell must not stop its siblings: record it, and main() lists it at the end.
        path = run.record_failure(exc)
        print(f"talker.fit: cell {run.path.name} failed ({type(exc).__name__}: {exc}); traceback in {path}", file=sys.stderr)


def write_grid_table(folder: Path, spec: str, name: str) -> None:
    """Build the paper-shaped table ``spec`` (experiments/<spec>.yaml) from a grid's run folders.

    The spec selects its experiment's runs by name (``where: {name: ablation}``, for the table or for
    each row); a grid run under another ``name=`` (the same experiment on one's own clip, or at another
    budget) holds that table's runs all the same.
    """
    from talker.reporting import ReportError, build_table, collect_runs, load_table_spec

    renamed = lambda where: {**where, "name": name} if "name" in where else where  # noqa: E731
    try:
        table_spec = load_table_spec(spec)
        table_spec = replace(table_spec, where=renamed(table_spec.where),
                             rows=[replace(row, where=renamed(row.where)) for row in table_spec.rows])
        table = build_table(collect_runs(folder), table_spec)
    except ReportError as exc:
        print(f"talker.fit: table {spec} not written: {exc}", file=sys.stderr)
        return
    md, _ = table.write(folder)
    print(f"{table.markdown()}\n[talker] table: {md}")


def run_dir_as_hydra_dir(argv: Sequence[str]) -> list[str]:
    """``run_dir=<folder>`` given on the command line becomes ``hydra.run.dir=<folder>``: ``run_dir``
    follows Hydra's output folder, so overriding it alone would leave .hydra/ and fit.log in the
    default folder and everything else in ``<folder>``; this way the run folder holds all of it."""
    return [f"hydra.run.dir={a.split('=', 1)[1]}" if a.startswith("run_dir=") else a for a in argv]


def main(argv: list[str] | None = None) -> None:
    argv = run_dir_as_hydra_dir(sys.argv[1:] if argv is None else argv)
    with one_line_errors("talker.fit"):
        cells = check_overrides(argv)
        # Hydra writes .hydra/ into the run folder before talker runs: check that it can.
        check_writable(grid_folder(argv) if len(cells) > 1 else run_folder(argv))
    if len(cells) > 1:
        print(f"[talker] grid of {len(cells)} cells: " + "; ".join(" ".join(c) or "(defaults)" for c in cells))
    with one_line_errors("talker.fit"):
        train_needs(cells)
    started = time.time()
    if len(cells) > 1:
        # Cell folders name the grid's axes first; a command-line sweep is a grid too (no -m needed).
        argv = [*argv, f"grid_axes=[{','.join(grid_axes(cells))}]"]
        if not {"-m", "--multirun"} & set(argv):
            argv = ["--multirun", *argv]
    # Config folders of $TALKER_CONFIG_PATH (strategies, systems, arms of one's own) for Hydra's own run.
    sys.argv = [sys.argv[0], *argv, *search_path_override()]
    _hydra_main()
    first = compose_config(cells[0])
    tables = OmegaConf.select(first, "table")
    if len(cells) > 1 and tables:
        for spec in [tables] if isinstance(tables, str) else tables:
            write_grid_table(grid_folder(argv), spec, first.name)
    failures = failed_cells(grid_folder(argv), since=started) if len(cells) > 1 else []
    if failures:
        print(f"talker.fit: {len(failures)} of {len(cells)} cells failed:", file=sys.stderr)
        for run_dir, reason in failures:
            print(f"  {run_dir}: {reason}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
