"""A run folder: the files talker writes into it, and the one place that reads them back.

::

    <run>/config.yaml            the resolved config (what ran); .hydra/ holds Hydra's own record
    <run>/checkpoints/last.ckpt  the last checkpoint (resume, evaluation, driving)
    <run>/checkpoints/*.ckpt     earlier checkpoints kept (e.g. every N steps: callbacks=[default,history])
    <run>/metrics.json           held-out metrics, what was unavailable and why, provenance
    <run>/frames.csv             per-frame values
    <run>/speed.json             the speed profile
    <run>/renders/<id>.png       every rendered held-out frame
    <run>/mouth_strip.png        mouth crops, ground truth over render
    <run>/cross/<setting>/       cross-driven videos and their scores
    <run>/FAILED.txt             the traceback of a grid cell that failed
    <run>/hearing_curve.csv|png  the condition gap at every saved checkpoint (benchmarks/hearing_curve.py)

Fit, evaluate, drive, the grid, reporting and the benchmarks all go through :class:`RunFolder`;
:func:`talker.utils.checkpoints.load_checkpoint` is the only function that reads a checkpoint file
(``weights_only=True``: a run folder may come from someone else), and its config is read with
:func:`talker.config.load_config_file` (its ``_target_`` s checked against the allow-list).
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from talker.config import ConfigError, load_config_file
from talker.utils.io import write_json, write_text_atomic

if TYPE_CHECKING:
    import torch

# Keys that may change between launches of the same run without making it a different run:
# where it is stored, how long it trains, how it is logged and checkpointed, which launcher runs it.
VOLATILE = (
    "run_dir", "resume", "skip_finished", "claim_device", "paths", "trainer", "logger", "callbacks", "hydra",
    "data.cache_dir", "table_rows", "threads", "parallel_cells",
)




def plain_config(cfg: DictConfig) -> dict:
    """The resolved config as plain containers, without Hydra's own node."""
    data = OmegaConf.to_container(cfg, resolve=True)
    data.pop("hydra", None)
    return data


def config_differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two plain configs, ignoring ``VOLATILE`` keys."""
    keys = []
    for key in sorted(set(old) | set(new), key=str):
        if f"{prefix}{key}" in VOLATILE:
            continue
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            keys.append(f"{prefix}{key}")
    return keys


class RunFolder:
    """One run's folder (it need not exist yet)."""

    CONFIG = "config.yaml"
    CHECKPOINTS = "checkpoints"
    CHECKPOINT = f"{CHECKPOINTS}/last.ckpt"
    METRICS = "metrics.json"
    FRAMES = "frames.csv"
    SPEED = "speed.json"
    RENDERS = "renders"
    MOUTH_STRIP = "mouth_strip.png"
    CROSS = "cross"
    FAILED = "FAILED.txt"
    HEARING_CURVE = "hearing_curve.csv"
    HEARING_CURVE_PLOT = "hearing_curve.png"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @property
    def config_file(self) -> Path:
        return self.path / self.CONFIG

    @property
    def checkpoint_file(self) -> Path:
        return self.path / self.CHECKPOINT

    @property
    def metrics_file(self) -> Path:
        return self.path / self.METRICS

    @property
    def speed_file(self) -> Path:
        return self.path / self.SPEED

    @property
    def failed_file(self) -> Path:
        return self.path / self.FAILED

    def saved_checkpoints(self) -> list[Path]:
        """Every checkpoint file of the run (``last.ckpt`` among them), by name."""
        return sorted((self.path / self.CHECKPOINTS).glob("*.ckpt"))

    def cross(self, setting: str) -> Path:
        """The folder of one cross-driven setting's results."""
        return self.path / self.CROSS / setting

    # -- reading ---------------------------------------------------------------------------------

    def config(self, what: str = "run") -> DictConfig:
        """The resolved config (a head run written before the model / stages / plan layout is upgraded
        to it); a missing file fails in one line naming it."""
        if not self.config_file.is_file():
            raise ConfigError(f"{self.config_file}: missing; is {self.path} a talker run folder ({what})?")
        cfg = load_config_file(self.config_file)
        if OmegaConf.select(cfg, "model._target_") == HEAD_MODULE and "head" not in cfg.model:
            cfg.model = upgrade_model_config(OmegaConf.to_container(cfg.model))
        return cfg

    def require_trained(self, what: str = "run") -> DictConfig:
        """The config of a trained run; a missing config or checkpoint fails in one line naming it."""
        cfg = self.config(what)
        if not self.checkpoint_file.is_file():
            self.checkpoint(what=what)  # raises, naming the file
        return cfg

    def model_target(self) -> str | None:
        """The ``_target_`` of the run's model (None without a config)."""
        if not self.config_file.is_file():
            return None
        return OmegaConf.select(load_config_file(self.config_file, check=False), "model._target_")

    def metrics(self) -> dict[str, Any] | None:
        """The parsed metrics.json, or None when the run has not been scored."""
        if not self.metrics_file.is_file():
            return None
        try:
            metrics = json.loads(self.metrics_file.read_text())
        except ValueError:  # damaged (a full disk, an edit): as if not scored
            print(f"[talker] {self.metrics_file}: not readable; the run is resumed and evaluated again", file=sys.stderr)
            return None
        return metrics if isinstance(metrics, dict) else None

    def is_trained(self) -> bool:
        """Whether the run finished training and scoring (a checkpoint and metrics.json)."""
        return self.checkpoint_file.is_file() and self.metrics_file.is_file()

    def checkpoint(self, checkpoint: str | Path | None = None, what: str = "run") -> dict[str, Any]:
        """The run's last checkpoint (or ``checkpoint``); a missing file fails in one line naming it."""
        path = Path(checkpoint) if checkpoint is not None else self.checkpoint_file
        if not path.is_file():
            raise ConfigError(
                f"{path}: missing; the {what} of {self.path} was never trained (or is still training)"
            )
        from talker.utils.checkpoints import load_checkpoint  # torch: not imported for reading tables

        return load_checkpoint(path)

    def load_module(
        self,
        cfg: DictConfig | None = None,
        checkpoint: str | Path | Mapping[str, Any] | None = None,
        device: str | torch.device | None = None,
        what: str = "run",
    ) -> torch.nn.Module:
        """The trained module of the run: built from its config (or ``cfg``), weights from its last
        checkpoint (or ``checkpoint``: a file, or its contents already loaded), in eval mode on
        ``device`` (default: the CPU)."""
        from talker.config import instantiate

        cfg = self.config(what) if cfg is None else cfg
        state = checkpoint if isinstance(checkpoint, Mapping) else self.checkpoint(checkpoint, what)
        module = instantiate(cfg.model, "model")
        module.load_state_dict(state["state_dict"])
        return module.to(device or "cpu").eval()

    # -- writing ---------------------------------------------------------------------------------

    def write_config(self, cfg: DictConfig) -> None:
        """Write the resolved config (what actually ran) next to Hydra's own .hydra/ folder."""
        write_text_atomic(self.config_file, OmegaConf.to_yaml(plain_config(cfg)))

    def write_metrics(self, data: Mapping[str, Any]) -> None:
        write_json(self.metrics_file, dict(data))

    def record_failure(self, exc: BaseException) -> Path:
        """Write a grid cell's traceback to ``FAILED.txt``."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.failed_file.write_text("".join(traceback.format_exception(exc)))
        return self.failed_file

    def clear_failure(self) -> None:
        self.failed_file.unlink(missing_ok=True)

    # -- resume / skip ---------------------------------------------------------------------------

    def resume_checkpoint(
        self, resume: bool, report: Callable[[str], None] = print, modify: bool = True
    ) -> Path | None:
        """The checkpoint a relaunch continues from (None: train from scratch): ``last.ckpt`` if it
        loads, else the newest checkpoint of the folder that does (a damaged ``last.ckpt`` is moved
        aside when ``modify``; see :func:`talker.utils.checkpoints.resume_checkpoint`)."""
        from talker.utils.checkpoints import resume_checkpoint

        return resume_checkpoint(self.checkpoint_file, report=report, modify=modify) if resume else None

    def check_existing(self, cfg: DictConfig) -> bool:
        """Decide what to do with a folder that may hold an earlier launch of ``cfg``.

        Returns True if the run is finished (its metrics.json reports at least ``trainer.max_steps``
        steps) and should be skipped. Raises :class:`ConfigError` if the folder holds a run with other
        settings and would be resumed from it, so nothing already written is silently mixed or lost.
        """
        if not self.config_file.is_file():
            return False
        old = load_config_file(self.config_file, check=False)  # compared, never built
        differences = config_differences(OmegaConf.to_container(old), plain_config(cfg))
        if differences and cfg.resume:
            shown = ", ".join(differences[:5]) + (f" (+{len(differences) - 5} more)" if len(differences) > 5 else "")
            raise ConfigError(
                f"{self.path} holds a run with other settings ({shown}); give this run another name "
                f"(name=...) or pass resume=false to train it from scratch there"
            )
        metrics = self.metrics()
        if differences or metrics is None:
            return False
        return (metrics.get("global_step") or 0) >= int(cfg.trainer.max_steps)


HEAD_MODULE = "talker.modules.head.HeadModule"
# The keys of HeadModule's arguments before the model, the stages and the plan became objects of their own.
_MODEL_KEYS = (
    "field", "conditioning", "levels", "occupancy", "sampler", "torso", "occupancy_update_every", "occupancy_warmup",
    "occupancy_conditions", "eval_chunk",
)
_MODULE_KEYS = ("_target_", "optimizer", "lr_encoder", "lr_net", "weight_decay", "weight_decay_encoder")


def upgrade_model_config(model: Mapping[str, Any]) -> dict[str, Any]:
    """A head run's resolved ``model`` config as written before the refactor into ``head``, ``stages``
    and ``plan`` (one flat list of HeadModule arguments), in today's layout; today's is returned as is.
    HeadModule moves such a run's state keys under ``head.``, so a run folder of either age loads."""
    if "head" in model or str(model.get("_target_", "")) != HEAD_MODULE:
        return dict(model)
    milestones = model.get("lr_milestones", [150_000, 180_000])
    decay = model.get("lr_schedule") or {}
    if str(decay.get("_target_", "")).endswith("ExponentialDecay"):
        def exponential(rate: float, from_run_start: bool = False) -> dict[str, Any]:
            return {"_target_": "talker.schedules.ExponentialDecay", "rate": rate, "from_run_start": from_run_start}

        lrs = {"head": exponential(decay["head"]), "lips": exponential(decay["lips"], True), "torso": exponential(decay["torso"])}
    else:  # R2-Talker's step decay (the default)
        lrs = {"head": None, "lips": None, "torso": None}
    opacity = model.get("opacity_weight", 1e-4)
    return {
        **{key: model[key] for key in _MODULE_KEYS if key in model},
        "head": {"_target_": "talker.head.TalkingHead", **{key: model[key] for key in _MODEL_KEYS if key in model}},
        "plan": {
            "_target_": "talker.schedules.StagePlan", "head_steps": model.get("head_steps", 240_000),
            "lips_start": model.get("lips_start"), "torso_steps": model.get("torso_steps", 0),
            "scale": model.get("schedule_scale", 1.0),
        },
        "stages": {
            "head": {
                "_target_": "talker.stages.HeadStage", "lr": lrs["head"], "lr_milestones": milestones,
                "photometric": model.get("photometric"), "opacity_weight": opacity,
            },
            "lips": {
                "_target_": "talker.stages.LipsStage", "lr": lrs["lips"], "opacity_weight": opacity,
                "lpips_weight": model.get("lpips_weight", 0.01), "lpips_weights": model.get("lpips_weights"),
                "patch_every": model.get("lip_patch_every", 2),
            },
            "torso": {"_target_": "talker.stages.TorsoStage", "lr": lrs["torso"], "lr_milestones": milestones},
        },
    }
