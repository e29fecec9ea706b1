"""Paper-shaped tables from collected runs: mean +- std over seeds, best and second best, the paper's numbers.

A table is specified in ``experiments/<name>.yaml``::

    title: "Table 4. Ablation study on modules"
    row_header: Method                       # first column's header (optional)
    where: {name: ablation}                 # runs this table considers (optional)
    rows:                                    # one per method / arm, selected by run columns
      - {label: "+ M-AGLO", where: {conditioning: landmark_hash, schedule: constant}}
      - {label: Wav2Lip, where: {method: wav2lip}, not_applicable: [PSNR]}   # shown as N/A
      - {label: Ground truth, where: {system: r2talker}, metric_suffix: _ref, ranked: false, optional: true}
    columns:                                 # one per metric
      - {label: PSNR, metric: psnr, better: higher, digits: 2}
      - {label: Sync (cross gender), metric: sync_conf, better: higher, where: {setting: cross_gender}}
      - {label: Jitter, metric: jitter_face, better: lower, optional: true}   # dropped when no run has it
      - {label: Cond. gap, metric: cond_gap_mouth, better: higher, digits: 2, marker: deaf}
    paper:                                   # reference numbers by row and column label (null: N/A)
      "+ M-AGLO": {PSNR: 26.7414}
    spread: std                              # or ci95 (optional; default std)
    count_header: runs                       # header of the last column, the runs per row (optional)

A cell averages the ``metric`` over every run matching the table's, the row's and the column's
``where`` (a value or a list of accepted values); runs differing only in seed are what it averages
over. Standard deviations are sample standard deviations (n - 1); with one run only the mean is shown.
With ``spread: ci95`` a cell shows ``mean ± h`` instead, the half-width of the 95% confidence interval
of the mean, ``h = t(0.975, n - 1) * s / sqrt(n)`` (Student's t; a user study's MOS: each rating is a row).
A row's ``not_applicable`` columns read "N/A" whatever its runs hold (the paper's convention for
metrics that do not measure that method, e.g. PSNR of Wav2Lip's pasted-back frames). A row with a
``metric_suffix`` reads ``<metric><suffix>`` of its runs: ``_ref`` is the same measure taken on the
ground-truth frames (the temporal metrics write it), shown as a reference row that is not ranked
(``ranked: false``). ``optional`` columns and rows are left out of a built table when none of their
cells has a value, so metrics that older runs lack do not fill a table with dashes.
In every column, the best mean is bold and the second best underlined, as in the papers; the paper's
numbers sit next to ours and are ranked among themselves; a column the paper has no numbers for
(a talker-only metric such as the mouth-box PSNR) has no paper sub-column.

A column with a ``marker`` (a name in :data:`MARKERS`) marks every row whose mean falls below the
marker's threshold: its symbol follows the row's label, and a footnote under the table (markdown and
LaTeX; a ``marked`` sub-column in ``frame()``) says what it means. ``marker: deaf`` on the
``cond_gap_mouth`` column marks heads that do not use their condition (gap below
:data:`HEARING_THRESHOLD_DB`), so that no table shows such a row unmarked; ``marker: blind`` on the
``cond_gap_eyes`` column does the same for eyes that ignore the eye ratio.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from talker.reporting.runs import ReportError, _read_yaml

MISSING = "–"

# Below this held-out mouth-box gap (``cond_gap_mouth``, dB: talker.metrics.ConditionGap) a head is
# taken not to use its condition. A head fed all-zero conditions scores exactly 0; the quickstart's
# landmark head about 3.8 dB and ER-NeRF's audio path on it 2.2 dB (issue 16).
HEARING_THRESHOLD_DB = 0.5


@dataclass(frozen=True)
class Marker:
    """Marks a row whose mean in the column is below ``below``: ``symbol`` after its label, ``note`` as
    the table's footnote (``{threshold}`` and ``{metric}`` are filled in)."""

    symbol: str
    below: float
    note: str

    def footnote(self, column: Column) -> str:
        return f"{self.symbol} " + self.note.format(threshold=f"{self.below:g}", metric=column.metric)


# Column markers by the name a table specification gives (``marker: deaf``).
MARKERS: dict[str, Marker] = {
    "deaf": Marker(
        "‡", HEARING_THRESHOLD_DB,
        "Does not use its condition: its held-out mouth-box PSNR with each frame's own condition is less "
        "than {threshold} dB above that with another frame's ({metric} < {threshold} dB).",
    ),
    # The same test in the eyes box, where only the eye ratio is swapped (talker.metrics.EyeConditionGap).
    "blind": Marker(
        "§", HEARING_THRESHOLD_DB,
        "Does not use its eye signal: its held-out eyes-box PSNR with each frame's own condition is less "
        "than {threshold} dB above that with only the eye ratio swapped ({metric} < {threshold} dB).",
    ),
}


@dataclass(frozen=True)
class Row:
    label: str
    where: dict[str, Any] = field(default_factory=dict)
    not_applicable: tuple[str, ...] = ()  # column labels shown as N/A
    metric_suffix: str = ""  # read <metric><suffix> instead (e.g. "_ref": the ground truth's own value)
    ranked: bool = True  # False: a reference row, never marked best / second
    optional: bool = False  # dropped from the built table when none of its cells has a value


@dataclass(frozen=True)
class Column:
    label: str
    metric: str
    better: str = "higher"  # or "lower"
    digits: int = 4
    where: dict[str, Any] = field(default_factory=dict)
    optional: bool = False  # dropped from the built table when none of its cells has a value
    marker: str | None = None  # a name in MARKERS: rows below its threshold are marked, with a footnote

    @property
    def arrow(self) -> str:
        return "↑" if self.better == "higher" else "↓"


@dataclass(frozen=True)
class TableSpec:
    name: str
    title: str
    rows: tuple[Row, ...]
    columns: tuple[Column, ...]
    where: dict[str, Any] = field(default_factory=dict)
    paper: dict[str, dict[str, float | None]] = field(default_factory=dict)
    source: str = ""
    row_header: str = "Method"
    spread: str = "std"  # or "ci95"
    count_header: str = "runs"  # the last column: how many runs (rows of the collected frame) a row matched


SPREADS = ("std", "ci95")


def load_table_spec(name: str | Path) -> TableSpec:
    """A table specification: a YAML path, or a name in talker's ``experiments/`` folder."""
    from talker.config import experiments_dir

    path = Path(name)
    if not path.is_file():
        path = experiments_dir() / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in experiments_dir().glob("*.yaml"))
        raise ReportError(f"{name}: no such table specification (known: {', '.join(known) or 'none'})")
    raw = _read_yaml(path) or {}
    for key in ("title", "rows", "columns"):
        if key not in raw:
            raise ReportError(f"{path}: missing key '{key}'")
    if isinstance(raw["rows"], dict) and "arms" in raw["rows"]:
        raw["rows"] = arm_rows(path.stem, str(raw["rows"]["arms"]))
    try:
        rows = tuple(
            Row(
                str(r["label"]), dict(r.get("where") or {}), tuple(str(c) for c in r.get("not_applicable") or ()),
                str(r.get("metric_suffix", "")), bool(r.get("ranked", True)), bool(r.get("optional", False)),
            )
            for r in raw["rows"]
        )
        columns = tuple(
            Column(
                str(c["label"]), str(c["metric"]), str(c.get("better", "higher")), int(c.get("digits", 4)),
                dict(c.get("where") or {}), bool(c.get("optional", False)),
                None if c.get("marker") is None else str(c["marker"]),
            )
            for c in raw["columns"]
        )
    except (KeyError, TypeError) as exc:
        raise ReportError(f"{path}: every row needs a label and every column a label and a metric ({exc})") from exc
    for column in columns:
        if column.better not in ("higher", "lower"):
            raise ReportError(f"{path}: column {column.label!r}: better must be 'higher' or 'lower', not {column.better!r}")
        if column.marker is not None and column.marker not in MARKERS:
            raise ReportError(f"{path}: column {column.label!r}: marker must be one of {', '.join(MARKERS)}, not {column.marker!r}")
    labels = {r.label for r in rows}
    for row in rows:
        unknown = set(row.not_applicable) - {c.label for c in columns}
        if unknown:
            raise ReportError(f"{path}: row {row.label!r}: not_applicable names unknown columns {sorted(unknown)}")
    paper = {str(k): dict(v or {}) for k, v in (raw.get("paper") or {}).items()}
    for row_label, values in paper.items():
        unknown_cols = set(values) - {c.label for c in columns}
        if row_label not in labels or unknown_cols:
            raise ReportError(f"{path}: paper numbers for unknown row {row_label!r} or columns {sorted(unknown_cols)}")
    spread = str(raw.get("spread", "std"))
    if spread not in SPREADS:
        raise ReportError(f"{path}: spread must be one of {', '.join(SPREADS)}, not {spread!r}")
    return TableSpec(
        path.stem, str(raw["title"]), rows, columns, dict(raw.get("where") or {}), paper, str(raw.get("source", "")),
        str(raw.get("row_header", "Method")), spread, str(raw.get("count_header", "runs")),
    )


def arm_rows(table: str, experiment: str) -> list[dict[str, Any]]:
    """The rows of ``table`` that arms declare (``configs/arm``: ``table_rows.<table>``), in their order.

    A run is an arm's row when its config choices equal those of the arm's cell of ``experiment`` on
    every group the arms do not all share (for Table 4: ``conditioning`` and ``schedule``), so runs
    made before a grid swept arms are found too."""
    from talker.config import ConfigError, axis_choices, compose_config
    from talker.config import arm_rows as declared

    try:
        arms = declared(table)
        choices = {
            arm: axis_choices(compose_config([f"experiment={experiment}", f"arm={arm}"], return_hydra_config=True, check=False).hydra.runtime.choices)
            for arm in arms
        }
    except ConfigError as exc:
        raise ReportError(f"{table}: rows from the arms of experiment={experiment}: {exc}") from exc
    groups = sorted({g for c in choices.values() for g in c if g != "arm"})
    axes = [g for g in groups if len({c.get(g) for c in choices.values()}) > 1]
    return [{"label": row["label"], "where": {g: choices[arm].get(g) for g in axes}} for arm, row in arms.items()]


def _matches(runs: pd.DataFrame, where: dict[str, Any]) -> pd.Series:
    """Runs whose ``key`` column equals one of the accepted values (numbers compare as numbers: 2 == 2.0)."""
    mask = pd.Series(True, index=runs.index)
    for key, accepted in where.items():
        if key not in runs.columns:
            return pd.Series(False, index=runs.index)
        column = runs[key]
        hit = pd.Series(False, index=runs.index)
        for value in accepted if isinstance(accepted, list) else [accepted]:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                hit |= pd.to_numeric(column, errors="coerce") == value
            else:
                hit |= column.astype(str) == str(value)
        mask &= hit
    return mask


@dataclass
class Cell:
    """``n`` runs have the metric, out of ``runs`` matching the row and column (the others lack it)."""

    mean: float | None
    std: float | None
    n: int
    runs: int = 0

    @property
    def ci95(self) -> float | None:
        """Half-width of the 95% confidence interval of the mean (Student's t), or None below 2 values."""
        if self.std is None or self.n < 2:
            return None
        from scipy.stats import t

        return float(t.ppf(0.975, self.n - 1) * self.std / math.sqrt(self.n))


def _rank(values: dict[str, float | None], better: str) -> dict[str, str]:
    """Row -> "best" / "second" by value (ties share a rank)."""
    present = sorted({v for v in values.values() if v is not None and not math.isnan(v)}, reverse=better == "higher")
    marks = {}
    for row, value in values.items():
        if value is not None and present and value == present[0]:
            marks[row] = "best"
        elif value is not None and len(present) > 1 and value == present[1]:
            marks[row] = "second"
    return marks


@dataclass
class Table:
    """A built table; ``frame()`` for numbers, ``markdown()`` and ``latex()`` for the paper's shape."""

    spec: TableSpec
    cells: dict[tuple[str, str], Cell]
    runs: dict[str, int]  # row label -> runs matching the row (all its columns)

    def paper_value(self, row: str, column: str) -> float | None:
        value = self.spec.paper.get(row, {}).get(column)
        return None if value is None else float(value)

    def marks(self) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], str]]:
        """Best / second marks of our means and of the paper's numbers, by (row, column)."""
        ours, paper = {}, {}
        for col in self.spec.columns:
            # A value its column's marker flags (a deaf head's gap) is never ranked best or second.
            flagged = {row for row, columns in self.marked.items() if col.label in columns}
            mean = lambda r: None if r in flagged else self.cells[(r, col.label)].mean
            for source, out in ((mean, ours), (lambda r: self.paper_value(r, col.label), paper)):
                ranked = _rank({row.label: source(row.label) for row in self.spec.rows if row.ranked}, col.better)
                out.update({(row, col.label): mark for row, mark in ranked.items()})
        return ours, paper

    def frame(self) -> pd.DataFrame:
        """Numbers: one row per table row, columns ``(label, mean | std | n | paper)`` (and ``ci95``
        after ``std`` when the table's spread is ci95)."""
        data = {}
        parts = ("mean", "std", "ci95", "n") if self.spec.spread == "ci95" else ("mean", "std", "n")
        for col in self.spec.columns:
            for part in parts:
                data[(col.label, part)] = [getattr(self.cells[(r.label, col.label)], part) for r in self.spec.rows]
            data[(col.label, "paper")] = [self.paper_value(r.label, col.label) for r in self.spec.rows]
            if col.marker is not None:
                data[(col.label, "marked")] = [col.label in self.marked.get(r.label, ()) for r in self.spec.rows]
        frame = pd.DataFrame(data, index=[r.label for r in self.spec.rows])
        frame.columns = pd.MultiIndex.from_tuples(frame.columns)
        return frame.astype({c: float for c in frame.columns if c[1] not in ("n", "marked")})

    @functools.cached_property
    def marked(self) -> dict[str, list[str]]:
        """Row label -> the labels of the marker columns whose threshold its mean falls below (the cells
        are fixed once built, so this is computed once)."""
        out: dict[str, list[str]] = {}
        for col in self.spec.columns:
            if col.marker is None:
                continue
            for row in self.spec.rows:
                mean = self.cells[(row.label, col.label)].mean
                if mean is not None and col.label not in row.not_applicable and mean < MARKERS[col.marker].below:
                    out.setdefault(row.label, []).append(col.label)
        return out

    def _label(self, row: Row) -> str:
        """The row's label followed by the symbol of every marker it falls below."""
        columns = {c.label: c for c in self.spec.columns}
        return row.label + "".join(MARKERS[columns[c].marker].symbol for c in self.marked.get(row.label, ()))

    def footnotes(self) -> list[str]:
        """One line per marker that marks a row here (none when no row is marked)."""
        marked = {c for labels in self.marked.values() for c in labels}
        return [MARKERS[c.marker].footnote(c) for c in self.spec.columns if c.label in marked]

    def _ours_text(self, row: str, col: Column, pm: str) -> str:
        """``mean ± std`` (or ``± ci95``); ``(n=k)`` when only k of the row's runs have this metric; N/A where the spec says so."""
        cell = self.cells[(row, col.label)]
        if col.label in self._row(row).not_applicable:
            return "N/A"
        if cell.mean is None:
            return MISSING
        text = f"{cell.mean:.{col.digits}f}"
        spread = cell.ci95 if self.spec.spread == "ci95" else cell.std
        text += f" {pm} {spread:.{col.digits}f}" if spread is not None else ""
        return text + (f" (n={cell.n})" if cell.n < cell.runs else "")

    def _row(self, label: str) -> Row:
        return next(r for r in self.spec.rows if r.label == label)

    def has_paper(self, col: Column) -> bool:
        """Whether the paper reports this column for any row (else it gets no paper sub-column)."""
        return any(col.label in values for values in self.spec.paper.values())

    def _paper_text(self, row: str, col: Column) -> str:
        value = self.paper_value(row, col.label)
        if value is None:
            return "N/A" if col.label in self.spec.paper.get(row, {}) else MISSING
        return f"{value:.{col.digits}f}"

    def runs_per_row(self) -> list[str]:
        return [str(self.runs[row.label]) if self.runs[row.label] else MISSING for row in self.spec.rows]

    def markdown(self) -> str:
        """GitHub markdown: ``**best**``, ``<u>second</u>``; "ours" is mean ± std over seeds (± the 95% CI for ci95)."""
        ours_marks, paper_marks = self.marks()
        wrap = {"best": "**{}**", "second": "<u>{}</u>"}
        header = [self.spec.row_header]
        for c in self.spec.columns:
            header += [f"{c.label}{c.arrow}", f"{c.label} (paper)"] if self.has_paper(c) else [f"{c.label}{c.arrow}"]
        header.append(self.spec.count_header)
        lines = [f"**{self.spec.title}**", "", "| " + " | ".join(header) + " |", "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
        for row, runs in zip(self.spec.rows, self.runs_per_row()):
            cells = [self._label(row).replace("|", "\\|")]
            for col in self.spec.columns:
                key = (row.label, col.label)
                cells.append(wrap.get(ours_marks.get(key), "{}").format(self._ours_text(row.label, col, "±")))
                if self.has_paper(col):
                    cells.append(wrap.get(paper_marks.get(key), "{}").format(self._paper_text(row.label, col)))
            cells.append(runs)
            lines.append("| " + " | ".join(cells) + " |")
        notes = self.footnotes()
        return "\n".join(lines + ([""] + [f"{note}  " for note in notes[:-1]] + notes[-1:] if notes else [])) + "\n"

    def latex(self) -> str:
        """A booktabs table: two sub-columns (ours, paper) per metric; \\textbf best, \\underline second."""
        ours_marks, paper_marks = self.marks()
        wrap = {"best": "\\textbf{{{}}}", "second": "\\underline{{{}}}"}
        arrows = {"↑": "$\\uparrow$", "↓": "$\\downarrow$"}
        widths = [2 if self.has_paper(c) else 1 for c in self.spec.columns]
        starts = [2 + sum(widths[:i]) for i in range(len(widths))]
        lines = [
            "\\begin{table}[t]",
            "\\centering",
            f"\\caption{{{_latex_escape(self.spec.title)}}}",
            f"\\label{{tab:{self.spec.name}}}",
            "\\begin{tabular}{l" + "r" * sum(widths) + "r}",
            "\\toprule",
            f"{_latex_escape(self.spec.row_header)} & "
            + " & ".join(
                f"\\multicolumn{{{w}}}{{c}}{{{_latex_escape(c.label)}{arrows[c.arrow]}}}" for c, w in zip(self.spec.columns, widths)
            )
            + f" & {_latex_escape(self.spec.count_header)} \\\\",
            " ".join(f"\\cmidrule(lr){{{a}-{a + w - 1}}}" for a, w in zip(starts, widths)),
            " & " + " & ".join("ours & paper" if w == 2 else "ours" for w in widths) + " & \\\\",
            "\\midrule",
        ]
        for row, runs in zip(self.spec.rows, self.runs_per_row()):
            cells = [_latex_escape(self._label(row))]
            for col in self.spec.columns:
                key = (row.label, col.label)
                ours = self._ours_text(row.label, col, "$\\pm$").replace(MISSING, "--")
                cells.append(wrap.get(ours_marks.get(key), "{}").format(ours))
                if self.has_paper(col):
                    paper = self._paper_text(row.label, col).replace(MISSING, "--")
                    cells.append(wrap.get(paper_marks.get(key), "{}").format(paper))
            cells.append(runs.replace("–", "--"))
            lines.append(" & ".join(cells) + " \\\\")
        lines += ["\\bottomrule", "\\end{tabular}"]
        notes = self.footnotes()
        if notes:
            lines += ["\\par\\smallskip", "{\\footnotesize " + " \\\\\n".join(_latex_escape(n) for n in notes) + "}"]
        lines += ["\\end{table}"]
        return "\n".join(lines) + "\n"

    def write(self, folder: str | Path) -> tuple[Path, Path]:
        """``<folder>/<name>.md`` and ``<name>.tex``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        md, tex = folder / f"{self.spec.name}.md", folder / f"{self.spec.name}.tex"
        md.write_text(self.markdown())
        tex.write_text(self.latex())
        return md, tex


def _latex_escape(text: str) -> str:
    for char, escaped in (("\\", "\\textbackslash{}"), ("&", "\\&"), ("%", "\\%"), ("_", "\\_"), ("#", "\\#"), ("†", "$^\\dagger$"), ("‡", "$^\\ddagger$"), ("§", "$^\\S$")):
        text = text.replace(char, escaped)
    return text


def build_table(runs: pd.DataFrame, spec: TableSpec | str | Path) -> Table:
    """Average each (row, column) cell over the matching runs (seeds)."""
    if not isinstance(spec, TableSpec):
        spec = load_table_spec(spec)
    scope = _matches(runs, spec.where) if len(runs) else pd.Series(dtype=bool)
    cells, counts = {}, {}
    for row in spec.rows:
        counts[row.label] = int((scope & _matches(runs, row.where)).sum()) if len(runs) else 0
        for col in spec.columns:
            if not len(runs) or col.label in row.not_applicable:
                cells[(row.label, col.label)] = Cell(None, None, 0)
                continue
            mask = scope & _matches(runs, row.where) & _matches(runs, col.where)
            matching = int(mask.sum())
            metric = col.metric + row.metric_suffix
            if metric not in runs.columns:
                cells[(row.label, col.label)] = Cell(None, None, 0, matching)
                continue
            values = pd.to_numeric(runs.loc[mask, metric], errors="coerce").dropna().to_numpy(dtype=float)
            if len(values) == 0:
                cells[(row.label, col.label)] = Cell(None, None, 0, matching)
            else:
                std = float(np.std(values, ddof=1)) if len(values) > 1 else None
                cells[(row.label, col.label)] = Cell(float(np.mean(values)), std, len(values), matching)
    return _without_empty_optionals(Table(spec, cells, counts))


def _without_empty_optionals(table: Table) -> Table:
    """Drop optional columns and rows none of whose cells has a value (e.g. metrics older runs lack)."""
    spec = table.spec
    filled = {key for key, cell in table.cells.items() if cell.mean is not None}
    columns = tuple(c for c in spec.columns if not c.optional or any((r.label, c.label) in filled for r in spec.rows))
    rows = tuple(r for r in spec.rows if not r.optional or any((r.label, c.label) in filled for c in columns))
    if (columns, rows) == (spec.columns, spec.rows):
        return table
    kept = {(r.label, c.label) for r in rows for c in columns}
    return Table(replace(spec, rows=rows, columns=columns), {k: v for k, v in table.cells.items() if k in kept},
                 {r.label: table.runs[r.label] for r in rows})
