"""Lightning's checkpoint I/O for talker runs: atomic, verified writes and weights-only reads.

Configured as a trainer plugin (configs/trainer/default.yaml), so that every checkpoint Lightning
writes (ModelCheckpoint's ``last.ckpt``, the final one talker.fit saves) and every one it resumes
from goes through :mod:`talker.utils.checkpoints`.
"""

from __future__ import annotations

from typing import Any

from lightning.fabric.plugins import TorchCheckpointIO

from talker.utils.checkpoints import load_checkpoint, remove_checkpoint, save_checkpoint


class AtomicCheckpointIO(TorchCheckpointIO):
    """:class:`TorchCheckpointIO` writing through :func:`save_checkpoint` (temporary file in the
    destination folder, fsync, read back, rename; the replaced file kept as ``*-previous.ckpt``) and
    reading through :func:`load_checkpoint` (always ``weights_only=True``, whatever the caller asks)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        save_checkpoint(checkpoint, path)

    def load_checkpoint(self, path: Any, map_location: Any | None = None, weights_only: bool | None = None) -> dict[str, Any]:
        return load_checkpoint(path, map_location=map_location, keys=())

    def remove_checkpoint(self, path: Any) -> None:
        remove_checkpoint(path)
