"""Pretrained weights that cannot be downloaded here: find them in the standard cache or a configured path.

Nothing in talker downloads at run time. A metric's weights are looked up, in order, at the path
configured for it (``weights=<file>``) and at ``$TORCH_HOME/hub/checkpoints/<file name>`` (torch's
standard cache, where torchvision, lpips and pytorch-fid put what they download). When neither
exists the metric is unavailable, and the reason names the file and where to get it.
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


def hub_checkpoint(file_name: str) -> Path:
    """``$TORCH_HOME/hub/checkpoints/<file_name>`` (torch's cache; ~/.cache/torch by default)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / file_name


def find_weights(file_name: str, configured: str | os.PathLike | None, url: str, what: str) -> Path:
    """The weights file to load, or :class:`MetricUnavailable` naming the file and where to get it."""
    if configured:
        path = Path(configured).expanduser()
        if path.is_file():
            return path
        raise MetricUnavailable(f"{what} weights not found at the configured path {path} (download {url})")
    path = hub_checkpoint(file_name)
    if path.is_file():
        return path
    raise MetricUnavailable(
        f"{what} weights missing: {path} (download {url} and put it there, or set the metric's weights=<file>)"
    )


@contextlib.contextmanager
def hub_cache_with(file_name: str, path: Path) -> Iterator[None]:
    """Make torch.hub find ``path`` as ``checkpoints/<file_name>`` while a package loads it "from its URL".

    lpips and pytorch-fid load their backbones through ``load_state_dict_from_url``, which reads the
    hub cache when the file is there (and only downloads otherwise). A file already in the cache is
    used as is; a configured file elsewhere is linked into a temporary hub directory for the duration.
    """
    if path.resolve() == hub_checkpoint(file_name).resolve():
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
