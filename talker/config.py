"""The Hydra config tree: where it lives, its resolvers, composing it, and one-line config errors."""

from __future__ import annotations

import difflib
import functools
import hashlib
import importlib.resources
import inspect
import itertools
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import hydra
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, InstantiationException, MissingConfigException
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, MissingMandatoryValue, OmegaConfBaseException

from talker.config_checks import check_values
from talker.errors import ConfigError

__all__ = ["ConfigError", "check_overrides", "compose_config", "instantiate", "load_config_file"]

PRIMARY = "fit"
CONFIG_PATH_ENV = "TALKER_CONFIG_PATH"


def _gpu_count() -> int:
    """CUDA devices on this machine (at least 1, so that configs also compose on CPU machines)."""
    import torch

    return max(1, torch.cuda.device_count())


def _steps(*paper_steps_then_scale: float) -> int:
    """Real steps for the sum of paper step counts under ``schedule.scale`` (the last argument),
    converted by :class:`~talker.schedules.StagePlan`'s rule."""
    from talker.schedules.plan import real_steps

    *paper_steps, scale = paper_steps_then_scale
    return real_steps(sum(float(p) for p in paper_steps), float(scale))


def _budget_scale(head_budget: int | None, head_steps: int) -> float:
    """``schedule.scale`` that gives ``head_budget`` real head-stage steps (1.0, the paper's length,
    when no budget is set)."""
    return 1.0 if head_budget is None else float(head_budget) / float(head_steps)


# A head at its smallest (field, strategy, sampler, occupancy grid): it trains and renders a frame in
# milliseconds on a CPU. The test suite's sizes and the benchmarks' quick modes start from these.
TINY_NETWORK = (
    "field.position_encoder.num_levels=4",
    "field.position_encoder.base_resolution=8",
    "field.position_encoder.desired_resolution=64",
    "field.position_encoder.log2_hashmap_size=12",
    "field.hidden_dim=16",
    "field.geo_feat_dim=15",
    "field.hidden_dim_color=16",
    "conditioning.grid.num_levels=2",
    "conditioning.grid.log2_hashmap_size=10",
    "conditioning.fusion.hidden_dim=16",
    "model.head.sampler.max_steps=16",
    "model.head.occupancy.resolution=16",
    "model.head.occupancy_warmup=2",
    "model.head.occupancy_update_every=2",
)

# Overrides that say where or how a run is stored, not what it is: left out of folder names.
NOT_IN_NAME = (
    "experiment", "name", "run_dir", "resume", "skip_finished", "claim_device", "launcher", "grid_axes",
    "threads", "parallel_cells", "paths.", "hydra.", "trainer.enable_progress_bar",
)
MAX_NAME = 120


def cell_name(overrides: Sequence[str], axes: Sequence[str] = ()) -> str:
    """Folder name of a run from its overrides: ``conditioning=x,schedule=y,...`` or ``default``.

    The grid's axes (keys that differ between its cells) come first, then group choices, then other
    key overrides, each sorted. Names longer than 120 characters keep their head and end in
    ``+<n>more-<hash>`` of the full list, so they stay unique and within file-system limits; the
    full list is in the run's .hydra/overrides.yaml.
    """
    kept = [str(o).replace("/", "_") for o in overrides if not str(o).lstrip("+~").startswith(NOT_IN_NAME)]
    key = lambda o: o.split("=", 1)[0].lstrip("+~")  # noqa: E731
    on_axis = sorted(o for o in kept if key(o) in set(axes))
    rest = [o for o in kept if o not in on_axis]
    groups = sorted(o for o in rest if "." not in key(o))
    keys = sorted(o for o in rest if "." in key(o))
    items = on_axis + groups + keys
    name = ",".join(items)
    if len(name) <= MAX_NAME:
        return name or "default"
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    head: list[str] = []
    for item in items:
        if len(",".join([*head, item])) > MAX_NAME - 24:
            break
        head.append(item)
    return ",".join(head) + f",+{len(items) - len(head)}more-{digest}"


def _models_dir() -> str:
    from talker.weights import models_dir

    return str(models_dir())


def _arms(table: str) -> str:
    """The arms that are rows of ``table``, in their order, as a sweep (``arm: ${arms:table4}``)."""
    return ",".join(arm_rows(table))


for _name, _fn in (
    ("steps", _steps), ("budget_scale", _budget_scale), ("cell", cell_name), ("gpu_count", _gpu_count), ("models_dir", _models_dir), ("arms", _arms),
):
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _fn)


def shipped_dir(name: str) -> Path:
    """A folder the wheel ships inside the package (``configs``, ``experiments``).

    Installed (``pip install .``, a wheel) it is ``talker/<name>`` in site-packages, found through
    the package; in a source checkout (``pip install -e .``, or running from the checkout) it is
    ``<checkout>/<name>`` next to ``talker/``, where it is edited.
    """
    packaged = Path(str(importlib.resources.files("talker"))) / name
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parent.parent / name
    if checkout.is_dir():
        return checkout
    raise ConfigError(f"{name}/ is neither in the talker package ({packaged}) nor next to it ({checkout}): reinstall talker")


def config_dir() -> Path:
    """The Hydra config tree (``configs/fit.yaml`` and its groups)."""
    folder = shipped_dir("configs")
    if not (folder / f"{PRIMARY}.yaml").is_file():
        raise ConfigError(f"config tree at {folder} has no {PRIMARY}.yaml: reinstall talker")
    return folder


def experiments_dir() -> Path:
    """The table specifications (``experiments/table4.yaml``, ...)."""
    return shipped_dir("experiments")


def config_dirs() -> list[Path]:
    """Where config groups are searched, first match wins: the folders of ``$TALKER_CONFIG_PATH``
    (``os.pathsep``-separated; a strategy, system or arm of one's own without touching the package),
    then the package's ``configs/``."""
    extra = [Path(p).resolve() for p in os.environ.get(CONFIG_PATH_ENV, "").split(os.pathsep) if p]
    for folder in extra:
        if not folder.is_dir():
            raise ConfigError(f"${CONFIG_PATH_ENV}: {folder} is not a folder")
    return [*extra, config_dir()]


def search_path_override() -> list[str]:
    """The Hydra override that adds ``$TALKER_CONFIG_PATH``'s folders to the search path (none without)."""
    extra = config_dirs()[:-1]
    return [f"hydra.searchpath=[{','.join(f'file://{p}' for p in extra)}]"] if extra else []


def group_files(group: str) -> dict[str, Path]:
    """``name -> file`` of the configs in a group folder, over :func:`config_dirs` (first match wins)."""
    files: dict[str, Path] = {}
    for folder in config_dirs():
        for path in sorted((folder / group).glob("*.yaml")):
            if not path.stem.startswith("_"):
                files.setdefault(path.stem, path)
    return files


def axis_choices(choices: Mapping[str, Any] | None) -> dict[str, Any]:
    """A composition's config-group choices that name an axis (``conditioning``, ``schedule``, ...):
    Hydra's own groups and the subgroups a group file pulls in (``conditioning/ambient@...``) left out."""
    return {k: v for k, v in dict(choices or {}).items() if not k.startswith("hydra") and "/" not in k}


def group_options(group: str) -> list[str]:
    """Names of the configs in a group folder (``conditioning`` -> ``['landmark_hash', ...]``)."""
    return sorted(group_files(group))


def arm_rows(table: str) -> dict[str, dict[str, Any]]:
    """``arm -> {label, order}`` of every arm (``configs/arm``) that declares itself a row of ``table``
    (its ``table_rows.<table>``), in the rows' order."""
    rows = {}
    for name, path in group_files("arm").items():
        row = ((yaml.safe_load(path.read_text()) or {}).get("table_rows") or {}).get(table)
        if row is not None:
            if "label" not in row:
                raise ConfigError(f"{path}: table_rows.{table} needs a label")
            rows[name] = {"label": str(row["label"]), "order": float(row.get("order", 0))}
    return dict(sorted(rows.items(), key=lambda item: (item[1]["order"], item[0])))


def compose_config(overrides: Sequence[str] = (), return_hydra_config: bool = False, check: bool = True) -> DictConfig:
    """Compose ``configs/fit.yaml`` with overrides, outside of a Hydra run (tests, evaluate, checks),
    and (``check``) check every ``_target_`` against the allow-list and every numeric value against
    its declared range (:mod:`talker.config_checks`). ``check=False`` is for reading a composition
    that nothing is built from (the tables' arm rows): checking imports every target's module."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            overrides = [*search_path_override(), *overrides]
            cfg = compose(PRIMARY, overrides=list(overrides), return_hydra_config=return_hydra_config)
    except (HydraException, OmegaConfBaseException) as exc:
        raise explain(exc, overrides) from exc
    finally:
        GlobalHydra.instance().clear()
    if check:
        check_targets(cfg)
        check_values(cfg)
    return cfg


def load_config_file(path: str | Path, check: bool = True) -> DictConfig:
    """A run folder's resolved ``config.yaml``: parsed and (``check``) every ``_target_`` checked
    against the allow-list (:func:`check_targets`) and every value against its range; errors name
    the file. A run folder may come from someone else: nothing it names is built here."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: missing; is {path.parent} a talker run folder?")
    try:
        cfg = OmegaConf.load(path)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, OmegaConfBaseException) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise ConfigError(f"{path}: not a readable config ({type(exc).__name__}: {reason})") from exc
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{path}: not a config (a YAML mapping of keys)")
    try:
        if check:
            check_targets(cfg)
            check_values(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return cfg


def _close(word: str, choices: Sequence[str]) -> str:
    near = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {near[0]!r}?)" if near else ""


def _keys_at(cfg: DictConfig | None, path: str) -> list[str]:
    node = OmegaConf.select(cfg, path) if (cfg is not None and path) else cfg
    return sorted(str(k) for k in node.keys()) if isinstance(node, DictConfig) else []


def explain(exc: BaseException, overrides: Sequence[str] = (), cfg: DictConfig | None = None) -> ConfigError:
    """Turn Hydra / OmegaConf / instantiate errors into a one-line :class:`ConfigError`."""
    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file and "/" in exc.missing_cfg_file:
        group, _, choice = exc.missing_cfg_file.rpartition("/")
        options = group_options(group)
        return ConfigError(
            f"{group}={choice}: no such {group} config{_close(choice, options)}; valid choices: {', '.join(options)}"
        )
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, MissingMandatoryValue) and getattr(cause, "full_key", None):
            return ConfigError(f"{cause.full_key}: missing mandatory value; set {cause.full_key}=<value>")
        if isinstance(cause, (ConfigKeyError, ConfigAttributeError)) and getattr(cause, "full_key", None):
            full_key = str(cause.full_key)
            parent, _, key = full_key.rpartition(".")
            base = cfg if cfg is not None else _base_config(overrides)
            valid = _keys_at(base, parent)
            where = f"under {parent}" if parent else "at the top level"
            return ConfigError(
                f"{full_key}: unknown config key{_close(key, valid)}; valid keys {where}: {', '.join(valid)}"
            )
        cause = cause.__cause__ or cause.__context__
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ConfigError(first_line)


def _base_config(overrides: Sequence[str]) -> DictConfig | None:
    """The config composed with only the group-selecting overrides (to list valid keys)."""
    groups = [o for o in overrides if "=" in o and "." not in o.split("=", 1)[0] and not o.startswith(("+", "~"))]
    try:
        return compose_config(groups)
    except ConfigError:
        return None


def sweep_cells(cfg: DictConfig, cli_overrides: Sequence[str]) -> list[list[str]]:
    """Every cell of a grid as its override list (command-line sweeps x ``hydra.sweeper.params``)."""
    parser = OverridesParser.create()
    axes: list[list[str]] = []
    fixed: list[str] = []
    swept_keys = set()
    for override in parser.parse_overrides(list(cli_overrides)):
        if override.is_sweep_override():
            key = override.get_key_element()
            axes.append([f"{key}={v}" for v in override.sweep_string_iterator()])
            swept_keys.add(key)
        else:
            fixed.append(override.input_line)
            swept_keys.add(override.get_key_element())  # as Hydra: a command-line value replaces the sweep
    params = OmegaConf.select(cfg, "hydra.sweeper.params") or {}
    for key, value in params.items():
        if key in swept_keys:
            continue
        (override,) = parser.parse_overrides([f"{key}={value}"])
        axes.append([f"{key}={v}" for v in override.sweep_string_iterator()] if override.is_sweep_override() else [f"{key}={value}"])
    return [fixed + list(cell) for cell in itertools.product(*axes)] if axes else [fixed]


def check_overrides(overrides: Sequence[str]) -> list[list[str]]:
    """Compose the config of every grid cell the overrides ask for; raise ConfigError on the first problem.

    Run before any training so that a typo in the last cell of a grid fails in a second, not after
    hours. Returns the cells.
    """
    plain = [o for o in overrides if not o.startswith("-")]
    check_syntax(plain)
    first_values = [_first_value(o) for o in plain]
    cells = sweep_cells(_hydra_view(tuple(first_values)), plain)
    for cell in cells:
        if list(cell) != first_values:  # the first cell was checked when it was composed
            compose_config(cell)
    return cells


@functools.lru_cache(maxsize=8)
def _hydra_view(overrides: tuple[str, ...]) -> DictConfig:
    """The checked config with Hydra's node, composed once per override list (read only: sweeps, folders)."""
    return compose_config(list(overrides), return_hydra_config=True)


def check_syntax(overrides: Sequence[str]) -> None:
    """Raise :class:`ConfigError` naming the first override Hydra's grammar cannot parse."""
    parser = OverridesParser.create()
    for override in overrides:
        try:
            parser.parse_overrides([override])
        except HydraException as exc:
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            reasons = [line for line in lines if not line.startswith(("See https", "Error parsing override", "Available:"))]
            reason = reasons[0] if reasons else "not in Hydra's override grammar"
            raise ConfigError(
                f"{override}: cannot be parsed ({reason}); quote a value holding spaces or ()[]{{}},: "
                f"characters, e.g. \"key='my value'\""
            ) from exc


def grid_axes(cells: Sequence[Sequence[str]]) -> list[str]:
    """Keys whose values differ between the cells of a grid."""
    values: dict[str, set[str]] = {}
    for cell in cells:
        for override in cell:
            key, _, value = override.partition("=")
            values.setdefault(key.lstrip("+~"), set()).add(value)
    return sorted(k for k, v in values.items() if len(v) > 1)


def grid_folder(overrides: Sequence[str]) -> Path:
    """The folder a grid's cells go to (``hydra.sweep.dir``)."""
    plain = [_first_value(o) for o in overrides if not o.startswith("-")]
    return Path(OmegaConf.select(_hydra_view(tuple(plain)), "hydra.sweep.dir"))


def run_folder(overrides: Sequence[str]) -> Path:
    """The folder a single run goes to (``hydra.run.dir``)."""
    plain = [o for o in overrides if not o.startswith("-")]
    return Path(OmegaConf.select(_hydra_view(tuple(plain)), "hydra.run.dir"))


def _first_value(override: str) -> str:
    parser = OverridesParser.create()
    (parsed,) = parser.parse_overrides([override])
    if parsed.is_sweep_override():
        return f"{parsed.get_key_element()}={next(iter(parsed.sweep_string_iterator()))}"
    return override


# What a config may build: classes of talker, and the few library classes talker's configs name.
# A config can come from someone else's run folder; naming a function (os.system, a pickle loader,
# hydra.utils.get_method ...) or a class of any other library is refused before anything is imported.
ALLOWED_TARGETS = (
    "talker.", "lightning.Trainer", "lightning.pytorch.Trainer", "lightning.pytorch.callbacks.",
    "lightning.pytorch.loggers.", "torch.optim.",
)


# Modules of one's own whose classes configs may build too (a strategy or system written outside the
# package and found through $TALKER_CONFIG_PATH), comma-separated: TALKER_TRUSTED_MODULES=mylab,toy.
TRUSTED_MODULES_ENV = "TALKER_TRUSTED_MODULES"


def allowed_prefixes() -> tuple[str, ...]:
    """:data:`ALLOWED_TARGETS` and the modules named in ``$TALKER_TRUSTED_MODULES``."""
    own = [m.strip().rstrip(".") for m in os.environ.get(TRUSTED_MODULES_ENV, "").split(",") if m.strip()]
    return (*ALLOWED_TARGETS, *(f"{m}." for m in own))


def allowed_target(target: str) -> bool:
    """Whether ``target`` names a class under :func:`allowed_prefixes` (imported only if its name is)."""
    if not any(target == p or (p.endswith(".") and target.startswith(p)) for p in allowed_prefixes()):
        return False
    try:
        obj = hydra.utils.get_object(target)
    except Exception:  # noqa: BLE001 - a missing class is reported by instantiate, naming the key
        return True
    return isinstance(obj, type)


def check_targets(node: DictConfig | ListConfig, path: str = "") -> None:
    """Raise :class:`ConfigError` for the first ``_target_`` under ``node`` that is not allowed."""
    for sub_path, sub in _nodes_with_target(node, path):
        target = str(sub["_target_"])
        if not allowed_target(target):
            key = f"{sub_path}._target_" if sub_path else "_target_"
            raise ConfigError(
                f"{key}={target}: refused; a talker config may only build classes of "
                f"{', '.join(p.rstrip('.') for p in allowed_prefixes())} (${TRUSTED_MODULES_ENV} adds modules of your own)"
            )


def instantiate(node: DictConfig, path: str, root: DictConfig | None = None, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` of allowed targets only, whose errors name the config key and the valid parameters."""
    check_targets(node, path)
    try:
        return hydra.utils.instantiate(node, **kwargs)
    except InstantiationException as exc:
        raise _explain_instantiation(exc, node, path) from exc
    except OmegaConfBaseException as exc:
        raise explain(exc, cfg=root) from exc


def _explain_instantiation(exc: InstantiationException, node: DictConfig, path: str) -> ConfigError:
    message = str(exc)
    match = re.search(r"got an unexpected keyword argument '(\w+)'", message)
    if match:
        key = match.group(1)
        for sub_path, sub in _nodes_with_target(node, path):
            if key in sub:
                target = hydra.utils.get_object(sub["_target_"])
                params = [p for p in inspect.signature(target).parameters if p not in ("self", "args", "kwargs")]
                return ConfigError(
                    f"{sub_path}.{key}: not a parameter of {sub['_target_']}{_close(key, params)}; "
                    f"valid keys: {', '.join(params)}"
                )
    explained = explain(exc)
    if explained.args[0] != message.strip().splitlines()[0]:
        return explained
    cause = exc.__cause__ or exc
    first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    return ConfigError(f"{path}: {type(cause).__name__}: {first}")


def _nodes_with_target(node: Any, path: str):
    """``(config path, node)`` of every node with a ``_target_``; interpolated nodes (``model.field:
    ${field}``) are reported at the path they are defined at (``field``)."""
    if isinstance(node, DictConfig):
        if "_target_" in node:
            yield path, node
        for key in node.keys():
            if not path and key == "hydra":  # Hydra's own node (launcher, sweeper): not talker's to build
                continue
            child = node._get_node(key)
            if child is not None and child._is_interpolation():
                try:
                    target = child._dereference_node()
                except OmegaConfBaseException:  # ${hydra:...} outside a run: not a node
                    continue
                if isinstance(target, (DictConfig, ListConfig)):
                    yield from _nodes_with_target(target, target._get_full_key(None))
            elif isinstance(child, (DictConfig, ListConfig)):
                yield from _nodes_with_target(child, f"{path}.{key}" if path else str(key))
    elif isinstance(node, ListConfig):
        for i, child in enumerate(node):
            yield from _nodes_with_target(child, f"{path}[{i}]")
