"""Every notebook in notebooks/ runs top to bottom on the fixture run folders and writes the golden tables."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

from ..conftest import REPO  # noqa: E402

HERE = Path(__file__).resolve().parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
KERNEL = "talker-tests"


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kernelspec for this interpreter (so the notebooks import this checkout's talker)."""
    share = tmp_path_factory.mktemp("jupyter")
    spec = share / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "talker tests",
                "language": "python",
                "env": {"PYTHONPATH": str(REPO)},
            }
        )
    )
    return share


def test_one_notebook_per_table_family() -> None:
    assert [p.stem.split("_")[0] for p in NOTEBOOKS] == ["table1", "table2", "table4", "table5", "table8"]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_fixture_runs(notebook: Path, kernel_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_env))
    monkeypatch.setenv("TALKER_RUNS", str(HERE / "fixtures" / "runs"))
    monkeypatch.setenv("TALKER_TABLES", str(tmp_path))
    nb = nbformat.read(notebook, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    imports = {line.split()[1] for line in code.splitlines() if line.startswith(("import ", "from "))}
    assert imports <= {"os", "IPython.display", "talker.reporting"}, imports  # the notebooks only call talker.reporting
    nbclient.NotebookClient(nb, timeout=120, kernel_name=KERNEL, resources={"metadata": {"path": str(notebook.parent)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    table = notebook.stem.split("_")[0]
    assert (tmp_path / f"{table}.md").read_text() == (HERE / "golden" / f"{table}.md").read_text()
    assert (tmp_path / f"{table}.tex").read_text() == (HERE / "golden" / f"{table}.tex").read_text()
    shown = [o for c in nb.cells for o in c.get("outputs", []) if "text/markdown" in o.get("data", {})]
    assert shown and "(paper)" in shown[0]["data"]["text/markdown"]


def test_reading_runs_and_building_tables_does_not_import_torch() -> None:
    """The notebooks' kernels import talker.reporting alone: torch (seconds to import, more on a busy
    machine) stays out, so a notebook rebuilds a table in about a second and without a torch install."""
    import subprocess

    code = (
        "import sys; from talker.reporting import build_table, collect_runs\n"
        f"runs = collect_runs({str(HERE / 'fixtures' / 'runs')!r})\n"
        "for name in ('table1', 'table4'): build_table(runs, name).markdown()  # table4 composes its arms' configs\n"
        "print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert out.strip() == "[]"
