"""Pretrained weights for the metrics: :mod:`talker.weights` finds (or downloads) them; a file that
cannot be had makes the metric unavailable, with the reason, instead of stopping an evaluation.

A metric's weights are, in order, the path configured for it (``weights=<file>``) and the file in
its cache (``$TORCH_HOME/hub/checkpoints/<file name>``, torch's standard cache, where torchvision,
lpips and pytorch-fid put what they download), downloaded there first unless offline.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch

from talker.metrics.base import MetricUnavailable
from talker.weights import WeightsFile, WeightsUnavailable, torch_hub_checkpoints


def find_weights(weights: WeightsFile, configured: str | os.PathLike | None) -> Path:
    """The file to load, or :class:`MetricUnavailable` naming the file and where to get it."""
    try:
        return weights.resolve(configured)
    except WeightsUnavailable as exc:
        raise MetricUnavailable(str(exc)) from exc


@contextlib.contextmanager
def hub_cache_with(file_name: str, path: Path) -> Iterator[None]:
    """Make torch.hub find ``path`` as ``checkpoints/<file_name>`` while a package loads it "from its URL".

    lpips and pytorch-fid load their backbones through ``load_state_dict_from_url``, which reads the
    hub cache when the file is there (and only downloads otherwise). A file already in the cache is
    used as is; a configured file elsewhere is linked into a temporary hub directory for the duration.
    """
    if path.resolve() == (torch_hub_checkpoints() / file_name).resolve():
        yield
        return
    previous = getattr(torch.hub, "_hub_dir", None)  # None: follow $TORCH_HOME, as before
    with tempfile.TemporaryDirectory(prefix="talker-hub-") as tmp:
        target = Path(tmp) / "checkpoints" / file_name
        target.parent.mkdir(parents=True)
        try:
            target.symlink_to(path.resolve())
        except OSError:  # file systems without symlinks
            shutil.copyfile(path, target)
        torch.hub.set_dir(tmp)
        try:
            yield
        finally:
            torch.hub._hub_dir = previous
