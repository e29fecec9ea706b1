"""Post-install step for CPU-only machines: make ``import torchvision`` work next to a CPU torch.

torchvision 0.28.0 is published only as a CUDA build. Next to ``torch==2.13.0+cpu`` its compiled
extension does not load, and torchvision's own Python code then fails at import time with
"operator torchvision::nms does not exist" -- which breaks every package that imports it (lpips,
pytorch-fid, lightning, torchmetrics). The fix is to declare the two operator schemas that
torchvision refers to at import time before it runs; models and transforms then work on CPU,
``torchvision.ops`` does not (nothing in talker uses it).

``python -m talker.install`` writes a one-line ``.pth`` hook into site-packages only when this
interpreter has a CPU build of torch *and* torchvision's extension fails to load. On a CUDA
machine it writes nothing, so behaviour there is unchanged. The hook itself is lazy: it only acts
when ``torchvision`` is first imported, and even then re-checks that the extension fails to load.
"""

from __future__ import annotations

import importlib.machinery
import sys
import sysconfig
from pathlib import Path

HOOK_MODULE = "_talker_torchvision_cpu_shim"
PTH_FILE = "talker-torchvision-cpu-shim.pth"

# Operators whose schemas torchvision's Python code uses while it is being imported
# (torchvision/_meta_registrations.py registers fake kernels for them).
IMPORT_TIME_OPS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)

HOOK_SOURCE = f'''"""Installed by `python -m talker.install` on a CPU-only machine; delete this file and
{PTH_FILE} to remove it. Declares torchvision's import-time operator schemas when its compiled
extension cannot load next to a CPU build of torch."""
import sys


class _TorchvisionCpuShim:
    done = False

    def find_spec(self, name, path=None, target=None):
        if name != "torchvision" or self.done:
            return None
        self.done = True
        try:
            _declare_missing_ops()
        except Exception as exc:  # never break the import that triggered us
            print(f"[talker] torchvision CPU shim failed: {{exc}}", file=sys.stderr)
        return None


def _declare_missing_ops():
    import glob
    import importlib.machinery
    import os

    import torch

    if torch.version.cuda is not None or getattr(torch.version, "hip", None) is not None:
        return
    spec = importlib.machinery.PathFinder.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return
    libs = glob.glob(os.path.join(spec.submodule_search_locations[0], "_C*.so"))
    try:
        if libs:
            torch.ops.load_library(libs[0])
            return
    except (OSError, ImportError, RuntimeError):
        pass
    lib = torch.library.Library("torchvision", "DEF")
    for schema in {IMPORT_TIME_OPS!r}:
        lib.define(schema)
    _TorchvisionCpuShim.library = lib  # keep the registration alive


sys.meta_path.insert(0, _TorchvisionCpuShim())
'''


def torchvision_extension_loads() -> bool | None:
    """True if torchvision's compiled ops load here, False if not, None if torchvision is absent."""
    import torch

    spec = importlib.machinery.PathFinder.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return None
    libs = sorted(Path(spec.submodule_search_locations[0]).glob("_C*.so"))
    if not libs:
        return False
    try:
        torch.ops.load_library(str(libs[0]))
    except (OSError, ImportError, RuntimeError):
        return False
    return True


def install_torchvision_shim(site_packages: Path | None = None) -> str:
    """Install the hook if (and only if) this machine needs it; return what was done."""
    import torch

    site = Path(site_packages or sysconfig.get_paths()["purelib"])
    if torch.version.cuda is not None or getattr(torch.version, "hip", None) is not None:
        return f"torch {torch.__version__} is a GPU build: no shim needed"
    loads = torchvision_extension_loads()
    if loads is None:
        return "torchvision is not installed: no shim needed"
    if loads:
        return "torchvision's compiled ops load next to this torch: no shim needed"
    (site / f"{HOOK_MODULE}.py").write_text(HOOK_SOURCE)
    (site / PTH_FILE).write_text(f"import {HOOK_MODULE}\n")
    return (
        f"torch {torch.__version__} is a CPU build and torchvision's compiled ops do not load: "
        f"installed the import shim {site / PTH_FILE}"
    )


def main() -> None:
    print(f"[talker.install] {install_torchvision_shim()}")


if __name__ == "__main__":
    sys.exit(main())
