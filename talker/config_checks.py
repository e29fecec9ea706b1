"""The meaning range of every numeric config key, declared once and checked when a config is composed.

A value outside its range (``data.num_rays=0``, ``schedule.scale=-1``, ``data.num_rays=abc``) fails
before any work in one line naming the key, the value and the range::

    data.num_rays=0: must be an integer >= 1

:data:`CONSTRAINTS` maps key patterns to a :class:`Bound` (first match wins): a leading ``*.`` stands
for any parent keys, any other ``*`` for part of one key; list items are ``key.<index>``. Keys are
checked where their value is written: a node that only refers to another (``model.field: ${field}``)
is checked at the node it refers to. A new numeric key needs an entry (tests/test_config_checks.py
fails on any numeric key of any shipped config without one).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig
from omegaconf.errors import OmegaConfBaseException

from talker.errors import ConfigError


@dataclass(frozen=True)
class Bound:
    """An allowed range: ``kind`` int or float (an int is a valid float), limits (open or closed),
    whether null is allowed, and words allowed in place of a number (``trainer.devices=auto``)."""

    kind: type = float
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    nullable: bool = False
    words: tuple[str, ...] = ()

    def describe(self) -> str:
        what = "an integer" if self.kind is int else "a number"
        if self.low is not None and self.high is not None:
            if self.low == self.high:
                text = f"{what} equal to {_num(self.low)}"
            else:
                left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
                text = f"{what} in {left}{_num(self.low)}, {_num(self.high)}{right}"
        elif self.low is not None:
            text = f"{what} {'>' if self.low_open else '>='} {_num(self.low)}"
        elif self.high is not None:
            text = f"{what} {'<' if self.high_open else '<='} {_num(self.high)}"
        else:
            text = what
        extra = [*(repr(w) for w in self.words), *(["null"] if self.nullable else [])]
        return text + (f" (or {', '.join(extra)})" if extra else "")

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.nullable
        if isinstance(value, str):
            return value in self.words
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind is int and not isinstance(value, int):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            return False
        return True


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))


COUNT = Bound(int, low=1)  # sizes, step counts, frame counts
NATURAL = Bound(int, low=0)  # counts where 0 means none
POSITIVE = Bound(float, low=0, low_open=True)  # scales, learning rates, lengths
NON_NEGATIVE = Bound(float, low=0)  # loss weights, decays, smoothing widths
FRACTION = Bound(float, low=0, high=1)  # shares of a whole
PROPER_FRACTION = Bound(float, low=0, high=1, low_open=True, high_open=True)
FACTOR = Bound(float, low=0, high=1, low_open=True)  # multiplicative decays
SEED = Bound(int, low=0, high=2**32 - 1)  # what numpy, torch and Lightning accept
ANY_NUMBER = Bound(float)

CONSTRAINTS: tuple[tuple[str, Bound], ...] = (
    # --- data
    ("data.num_rays", COUNT),
    ("data.face_fraction", FRACTION),
    ("data.mouth_fraction", FRACTION),
    ("data.eyes_fraction", FRACTION),
    ("data.blink_share", Bound(float, low=0, high=1, high_open=True)),
    ("data.landmark_window", COUNT),
    ("data.scale", POSITIVE),
    ("data.offset.*", ANY_NUMBER),
    ("data.val_frames", COUNT),
    ("data.lip_patch", NATURAL),
    ("data.audio_window", COUNT),
    ("*.train_fraction", Bound(float, low=0, high=1, low_open=True)),  # a share of a person's training frames
    ("data.batch_size", COUNT),
    ("data.crops_per_epoch", COUNT),
    ("data.sequence_frames", Bound(int, low=2)),
    ("data.synthetic.num_frames", Bound(int, low=2)),  # at least one training and one held-out frame
    ("data.synthetic.resolution", Bound(int, low=16)),  # the face's features need a few pixels each
    ("data.synthetic.val_fraction", PROPER_FRACTION),
    ("data.synthetic.workers", NATURAL),
    # --- schedule (paper steps; scale shrinks them all)
    ("schedule.scale", POSITIVE),
    ("schedule.head_budget", Bound(int, low=1, nullable=True)),
    ("schedule.head_steps", COUNT),
    ("schedule.torso_steps", NATURAL),
    ("schedule.lips_start", Bound(int, low=0, nullable=True)),
    ("schedule.lr_milestones.*", NATURAL),
    ("schedule.levels.every", COUNT),
    ("schedule.levels.start_levels", COUNT),
    # --- trainer
    ("trainer.max_steps", COUNT),
    ("trainer.val_check_interval", POSITIVE),
    ("trainer.log_every_n_steps", COUNT),
    ("trainer.max_epochs", Bound(int, low=-1)),
    ("trainer.num_sanity_val_steps", Bound(int, low=-1)),
    ("trainer.check_val_every_n_epoch", Bound(int, low=1, nullable=True)),
    ("trainer.devices", Bound(int, low=1, words=("auto",))),
    ("trainer.devices.*", NATURAL),
    # --- callbacks
    ("callbacks.checkpoint.every_n_train_steps", Bound(int, low=0, nullable=True)),
    ("callbacks.checkpoint.save_top_k", Bound(int, low=-1)),
    ("callbacks.history.every_n_train_steps", Bound(int, low=1)),
    ("callbacks.history.save_top_k", Bound(int, low=-1)),
    ("*.speed.frames", COUNT),
    ("*.speed.warmup", NATURAL),
    ("*.speed.resolution", Bound(int, low=16, nullable=True)),
    ("callbacks.ema.decay", PROPER_FRACTION),
    ("callbacks.progress.every_s", POSITIVE),
    ("callbacks.projector.max_frames", COUNT),
    ("callbacks.cross_driven.seconds", POSITIVE),
    ("callbacks.cross_driven.pose_smoothing", NON_NEGATIVE),
    ("callbacks.cross_driven.motion.max_steps", COUNT),
    # --- CPU threads (null: the cores this process may use, split among parallel cells)
    ("threads", Bound(int, low=1, nullable=True)),
    ("parallel_cells", COUNT),
    # --- seeds
    ("seed", SEED),
    ("*.seed", SEED),
    # --- optimisation
    ("model.stages.*.lr", Bound(float, low=0, low_open=True, nullable=True)),  # a schedule node, or null: the stage's default
    ("model.stages.*.lr.rate", FACTOR),  # exponential decay over the stage
    ("*.lr_schedule.*", FACTOR),
    ("*.lr", POSITIVE),
    ("*.lr_*", POSITIVE),
    ("*.id_lr", POSITIVE),  # LokiTalk's ID embedding once fine-tuning begins
    ("*.attention_lr_scale", POSITIVE),  # the audio attention net's multiple of its strategy's rate
    ("*.attention_weight_decay", Bound(float, low=0, nullable=True)),  # null: the model's weight decay
    ("*.weight_decay*", NON_NEGATIVE),
    ("*.optimizer.betas.*", Bound(float, low=0, high=1, high_open=True)),
    ("*.optimizer.eps", POSITIVE),
    ("*.photometric.alpha", NON_NEGATIVE),
    ("*.photometric.max_weight", POSITIVE),
    ("*.photometric.weights.*", POSITIVE),  # LokiTalk's region weights of the colour loss (eq. 6)
    ("*.*_weight", NON_NEGATIVE),
    ("*.weight", NON_NEGATIVE),
    # --- rendering
    ("*.occupancy.resolution", COUNT),
    ("*.occupancy.decay", FACTOR),
    ("*.occupancy.density_threshold", NON_NEGATIVE),
    ("*.occupancy.update_fraction", FACTOR),
    ("*.occupancy.dilation", NATURAL),
    ("*.occupancy_conditions", COUNT),
    ("*.occupancy_update_every", COUNT),
    ("*.occupancy_warmup", NATURAL),
    ("*.sampler.max_steps", COUNT),
    ("*.sampler.dt_gamma", NON_NEGATIVE),
    ("*.eval_chunk", COUNT),
    ("*.lip_patch_every", COUNT),
    ("*.patch_every", COUNT),
    # --- encoders (positional, landmark, torso and tri-plane grids)
    ("*.input_dim", Bound(int, low=2, high=3)),
    ("*.num_levels", COUNT),
    ("*.level_dim", COUNT),
    ("*.base_resolution", COUNT),
    ("*.desired_resolution", COUNT),
    ("*.log2_hashmap_size", Bound(int, low=4, high=24)),  # 2**24 entries per level: gigabytes already
    ("*.bound", POSITIVE),
    ("*.sh_degree", Bound(int, low=1, high=4)),
    ("*.*frequencies", NATURAL),
    # --- network sizes
    ("*.*hidden*", COUNT),
    ("*.num_layers*", COUNT),
    ("*.flow_layers", COUNT),
    ("*.geo_feat_dim", COUNT),
    ("*.out_dim", Bound(int, low=1, nullable=True)),
    ("*.*_dim", COUNT),
    ("*.dim", COUNT),
    ("*.encoder.width", COUNT),  # LokiTalk's ID encoder channels
    ("*.embed", COUNT),
    ("*.num_codes", COUNT),
    ("*.rows", COUNT),
    ("*.window", COUNT),
    ("*.num_landmarks", Bound(int, low=68, high=68)),  # the iBUG 68-point scheme throughout
    ("*.ramp_steps", NATURAL),
    # --- talker.preprocess key=value options (talker.preprocess.Options)
    ("preprocess.size", NATURAL),  # 0: the video's own size
    ("preprocess.seconds", NON_NEGATIVE),  # 0: all of it
    ("preprocess.val_fraction", PROPER_FRACTION),
    ("preprocess.smooth", NON_NEGATIVE),
    ("preprocess.fov", Bound(float, low=0, high=180, low_open=True, high_open=True)),
    ("preprocess.focal", NON_NEGATIVE),  # 0: from fov
    ("preprocess.min_detected", FRACTION),
    ("preprocess.audio_tolerance", NON_NEGATIVE),
    ("preprocess.bg_margin", NATURAL),
    # --- motion stage
    ("*.smoothing_sigma", NON_NEGATIVE),
    ("*.temperature", NON_NEGATIVE),
    ("*.sync_pairs", COUNT),
    ("*.sync_start", NATURAL),
)
# data=multi_identity: every person's data module is data.base, with data's keys.
CONSTRAINTS += tuple((key.replace("data.", "data.base.", 1), bound) for key, bound in CONSTRAINTS if key.startswith("data."))

# Shares of one whole: the keys of each group must sum to at most 1.
SHARES: tuple[tuple[str, ...], ...] = (("data.face_fraction", "data.mouth_fraction", "data.eyes_fraction"),)

_REFERENCE = re.compile(r"^\$\{[\w.\[\]]+\}$")  # ${a.b}: checked where a.b is written


def _regex(pattern: str) -> re.Pattern:
    anywhere = pattern.startswith("*.")
    body = re.escape(pattern[2:] if anywhere else pattern).replace(r"\*", r"[^.]*")
    return re.compile((r"(?:.+\.)?" if anywhere else "") + body)


_MATCHERS = tuple((_regex(pattern), bound) for pattern, bound in CONSTRAINTS)


def bound_of(key: str) -> Bound | None:
    """The declared range of a dotted key (``field.position_encoder.num_levels``), or None.
    Hydra's own keys (``_target_``, ``_partial_``) have none."""
    if key.rsplit(".", 1)[-1].startswith("_"):
        return None
    for regex, bound in _MATCHERS:
        if regex.fullmatch(key):
            return bound
    return None


def leaves(cfg: DictConfig | ListConfig, prefix: str = "") -> list[tuple[str, Any, bool]]:
    """``(dotted key, value, computed)`` of every leaf written in ``cfg`` (not ``hydra``), plain values
    first; ``computed`` leaves are resolver interpolations (``${steps:...}``). References to other
    nodes and values that do not resolve (``${hydra:...}`` outside a run) are left out."""
    plain: list[tuple[str, Any, bool]] = []
    computed: list[tuple[str, Any, bool]] = []
    keys = range(len(cfg)) if isinstance(cfg, ListConfig) else list(cfg.keys())
    for key in keys:
        path = f"{prefix}{key}"
        if path == "hydra":
            continue
        node = cfg._get_node(key)
        interpolated = node is not None and node._is_interpolation()
        if interpolated and _REFERENCE.match(str(node._value())):
            continue
        try:
            value = cfg[key]
        except OmegaConfBaseException:
            continue
        if isinstance(value, (DictConfig, ListConfig)):
            for item in leaves(value, f"{path}."):
                (computed if item[2] else plain).append(item)
        else:
            (computed if interpolated else plain).append((path, value, interpolated))
    return plain + computed


def check_values(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` for the first value outside its declared range."""
    for key, value, _ in leaves(cfg):
        bound = bound_of(key)
        if bound is not None and not bound.accepts(value):
            shown = "null" if value is None else value
            got = f" (got {type(value).__name__} {value!r})" if isinstance(value, (str, bool)) else ""
            raise ConfigError(f"{key}={shown}: must be {bound.describe()}{got}")
    for keys in SHARES:
        given = {k: v for k in keys if isinstance(v := _select(cfg, k), (int, float))}
        if sum(given.values()) > 1:
            shown = " + ".join(f"{k}={v}" for k, v in given.items() if v)  # the shares that take rays
            raise ConfigError(f"{shown} = {sum(given.values()):g}: shares of one batch must sum to at most 1")


def _select(cfg: DictConfig, key: str) -> Any:
    from omegaconf import OmegaConf

    try:
        return OmegaConf.select(cfg, key)
    except OmegaConfBaseException:
        return None


def cli_value(name: str, text: str, declared_as: str) -> Any:
    """A command-line argument ``name=text`` of a tool (``talker.drive temperature=0.5``) parsed as a
    number and checked against the range declared for the config key ``declared_as``."""
    value: Any = text
    for kind in (int, float):
        try:
            value = kind(text)
            break
        except ValueError:
            continue
    bound = bound_of(declared_as)
    if bound is not None and not bound.accepts(value):
        raise ConfigError(f"{name}={text}: must be {bound.describe()}")
    return value


def cli_device(name: str, text: str | None) -> str | None:
    """A ``device=`` argument: a torch device that exists on this machine (None: the tool's default)."""
    if text is None:
        return None
    import torch

    try:
        device = torch.device(text)
    except RuntimeError as exc:
        raise ConfigError(f"{name}={text}: not a device (cpu, cuda or cuda:<index>)") from exc
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(f"{name}={text}: no such CUDA device here ({torch.cuda.device_count()} visible)")
    return text
