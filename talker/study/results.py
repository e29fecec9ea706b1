"""``python -m talker.study results``: ratings -> Table 3 (talker.reporting), exclusions, agreement, raw CSV.

- Table 3 (``experiments/table3.yaml``): one cell per method and criterion, the mean opinion score
  over every rating of that method's clips by the included raters, ± the half-width of its 95%
  confidence interval (Student's t over those ratings), best / second best marked, the paper's
  numbers beside ours. Attention-check clips are not in the table.
- Exclusions: a study with attention checks excludes a rater whose mean score (over the criteria)
  on the ground-truth clip is below ``attention.ground_truth.min``, or on the broken clip above
  ``attention.broken.max``, and a rater who has not rated every attention clip yet (unverified).
- Agreement: Krippendorff's alpha (ordinal) per criterion, over the included raters and the method
  clips (missing answers allowed); None with a reason when it is undefined (fewer than 2 raters, or
  a single score value in the data).
- ``ratings.csv``: every answer (rater number, blind id, kind, method, clip, criterion, score, time).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from talker.reporting import Row, Table, build_table, load_table_spec
from talker.study.design import Study
from talker.study.store import Rating
from talker.utils.io import write_json, write_text_atomic

TABLE = "table3"


@dataclass
class StudyResults:
    study: Study
    ratings: pd.DataFrame  # long: one row per answer
    excluded: dict[int, str]  # rater number -> why
    raters: list[int]  # every registered rater
    included: list[int]
    agreement: dict[str, float | None]
    agreement_notes: dict[str, str]
    table: Table


def ratings_frame(study: Study, ratings: list[Rating]) -> pd.DataFrame:
    rows = []
    for r in ratings:
        item = study.item(r.item)
        rows.append({
            "rater": r.rater, "item": r.item, "kind": item.kind if item else None, "method": item.method if item else None,
            "clip": item.clip if item else None, "criterion": r.criterion, "score": r.score,
            "answered_at": _utc(r.answered_at),
        })
    columns = ["rater", "item", "kind", "method", "clip", "criterion", "score", "answered_at"]
    return pd.DataFrame(rows, columns=columns)


def _utc(moment: datetime | None) -> str | None:
    """ISO time in UTC (SQLite hands back naive datetimes; they were written in UTC)."""
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).isoformat()


def attention_exclusions(study: Study, ratings: pd.DataFrame) -> dict[int, str]:
    """Rater number -> reason, for raters failing (or not yet through) the study's attention checks."""
    checks = [i for i in study.items if i.kind != "method"]
    if not checks:
        return {}
    excluded = {}
    for rater, own in ratings.groupby("rater"):
        reasons = []
        for check in checks:
            scores = own.loc[own["item"] == check.id, "score"]
            if len(scores) < len(study.criteria):
                reasons.append(f"has not rated the {check.kind.replace('_', '-')} clip")
                continue
            mean = float(scores.mean())
            rule = study.attention.get(check.kind, {})
            if check.kind == "ground_truth" and "min" in rule and mean < float(rule["min"]):
                reasons.append(f"rated the ground-truth clip {mean:.2f} < {float(rule['min']):g}")
            if check.kind == "broken" and "max" in rule and mean > float(rule["max"]):
                reasons.append(f"rated the broken clip {mean:.2f} > {float(rule['max']):g}")
        if reasons:
            excluded[int(rater)] = "; ".join(reasons)
    return excluded


def krippendorff_alpha(ratings: pd.DataFrame, criterion: str) -> tuple[float | None, str]:
    """Ordinal alpha over raters x method clips for one criterion, and a note (why None, or the data size)."""
    import krippendorff

    own = ratings[(ratings["criterion"] == criterion) & (ratings["kind"] == "method")]
    matrix = own.pivot_table(index="rater", columns="item", values="score", aggfunc="last")
    if matrix.shape[0] < 2:
        return None, f"needs 2 raters, has {matrix.shape[0]}"
    if own["score"].nunique() < 2:
        return None, "every rating is the same value"
    alpha = krippendorff.alpha(reliability_data=matrix.to_numpy(dtype=float), level_of_measurement="ordinal")
    return float(alpha), f"{matrix.shape[0]} raters, {matrix.shape[1]} clips, {int(matrix.notna().to_numpy().sum())} ratings"


def table_for(study: Study, scores: pd.DataFrame, name: str | Path = TABLE) -> Table:
    """The table spec's rows that match a method of the study, then one row per unmatched method;
    only the study's criteria as columns."""
    spec = load_table_spec(name)
    methods = study.methods
    rows = [r for r in spec.rows if set(methods) & _accepted(r.where.get("method"))]
    matched = set().union(*(_accepted(r.where.get("method")) for r in rows)) if rows else set()
    rows += [Row(m, {"method": m}) for m in methods if m not in matched]
    columns = tuple(c for c in spec.columns if c.metric in study.criterion_keys)
    labels = {r.label for r in rows}
    paper = {row: values for row, values in spec.paper.items() if row in labels}
    return build_table(scores, replace(spec, rows=tuple(rows), columns=columns, paper=paper))


def _accepted(value) -> set[str]:
    if value is None:
        return set()
    return {str(v) for v in value} if isinstance(value, list) else {str(value)}


def analyse(study: Study, ratings: list[Rating], raters: list[int] | None = None, table: str | Path = TABLE) -> StudyResults:
    frame = ratings_frame(study, ratings)
    excluded = attention_exclusions(study, frame)
    everyone = sorted(set(raters or []) | {int(r) for r in frame["rater"].unique()})
    kept = frame[~frame["rater"].isin(list(excluded)) & (frame["kind"] == "method")]
    # One row per rater and clip, one column per criterion: each row is one "run" of the table.
    wide = kept.pivot_table(index=["rater", "item", "method", "clip"], columns="criterion", values="score", aggfunc="last")
    wide = wide.reset_index()
    wide.columns.name = None
    agreement, notes = {}, {}
    for criterion in study.criterion_keys:
        agreement[criterion], notes[criterion] = krippendorff_alpha(kept, criterion)
    included = sorted({int(r) for r in kept["rater"].unique()})
    return StudyResults(study, frame, excluded, everyone, included, agreement, notes, table_for(study, wide, table))


def notes(results: StudyResults) -> list[str]:
    """Who rated, who was excluded and why, and the agreement between raters (markdown lines)."""
    method_clips = sum(i.kind == "method" for i in results.study.items)
    lines = [
        (
            f"raters registered: {len(results.raters)}, included: {len(results.included)}; "
            f"{len(results.study.methods)} methods x {len(results.study.clips)} clips ({method_clips} rated clips)."
        )
    ]
    if results.excluded:
        lines += ["", "Excluded by the attention checks:", ""]
        lines += [f"- rater R{r + 1:03d}: {why}" for r, why in sorted(results.excluded.items())]
    lines += ["", "Agreement between raters (Krippendorff's alpha, ordinal):", ""]
    for criterion in results.study.criteria:
        alpha = results.agreement[criterion.key]
        value = "undefined" if alpha is None else f"{alpha:.3f}"
        lines.append(f"- {criterion.label}: {value} ({results.agreement_notes[criterion.key]})")
    return lines


def summary_markdown(results: StudyResults) -> str:
    """Table 3, then :func:`notes`."""
    return "\n".join([results.table.markdown(), *notes(results)]) + "\n"


def write_results(results: StudyResults, out: str | Path) -> list[Path]:
    """``table3.md``, ``table3.tex``, ``summary.md``, ``summary.json`` and ``ratings.csv`` in ``out``."""
    out = Path(out)
    md, tex = results.table.write(out)
    summary = out / "summary.md"
    write_text_atomic(summary, summary_markdown(results))
    write_json(out / "summary.json", {
        "raters": results.raters, "included": results.included,
        "excluded": {str(k): v for k, v in results.excluded.items()},
        "agreement": results.agreement, "agreement_notes": results.agreement_notes,
        "mos": _mos_json(results.table),
    })
    csv = out / "ratings.csv"
    write_text_atomic(csv, results.ratings.to_csv(index=False))
    return [md, tex, summary, out / "summary.json", csv]


def _mos_json(table: Table) -> dict[str, dict[str, dict[str, float | None]]]:
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for row in table.spec.rows:
        for col in table.spec.columns:
            cell = table.cells[(row.label, col.label)]
            out.setdefault(row.label, {})[col.metric] = {"mos": cell.mean, "ci95": cell.ci95, "n": cell.n}
    return out


def html_report(results: StudyResults) -> str:
    """The admin page: Table 3 as an HTML table (best bold, second underlined) and the summary."""
    table = results.table
    ours, paper = table.marks()
    head = "".join(f"<th>{html.escape(c.label)} {c.arrow}</th><th class='paper'>paper</th>" for c in table.spec.columns)
    body = []
    for row in table.spec.rows:
        cells = [f"<th>{html.escape(row.label)}</th>"]
        for col in table.spec.columns:
            cell = table.cells[(row.label, col.label)]
            text = "–" if cell.mean is None else f"{cell.mean:.2f}" + (f" ± {cell.ci95:.2f}" if cell.ci95 is not None else "")
            value = table.paper_value(row.label, col.label)
            cells.append(f"<td class='{ours.get((row.label, col.label), '')}'>{text}</td>")
            cells.append(f"<td class='paper {paper.get((row.label, col.label), '')}'>{'–' if value is None else f'{value:.2f}'}</td>")
        cells.append(f"<td>{table.runs[row.label] or '–'}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    items = "".join(
        f"<ul><li>{html.escape(line[2:])}</li></ul>" if line.startswith("- ") else f"<p>{html.escape(line)}</p>"
        for line in notes(results) if line
    ).replace("</ul><ul>", "")
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(table.spec.title)}</title>
<link rel="stylesheet" href="/static/study.css"></head><body class="admin"><main>
<h1>{html.escape(table.spec.title)}</h1>
<table id="table3"><thead><tr><th>{html.escape(table.spec.row_header)}</th>{head}<th>{html.escape(table.spec.count_header)}</th></tr></thead>
<tbody>{''.join(body)}</tbody></table>
<p class="legend"><b>bold</b>: best, <u>underlined</u>: second best (ours and the paper's ranked separately).
Raw ratings: /admin/export.csv with the same token.</p>
<section id="summary">{items}</section></main></body></html>"""
