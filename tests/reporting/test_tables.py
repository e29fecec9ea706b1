"""Tables from fixture run folders: collected rows, hand-checked cells, and golden markdown / LaTeX.

Regenerate the golden files after an intended format change with
``TALKER_UPDATE_GOLDEN=1 python -m pytest tests/reporting/test_tables.py`` and review the diff.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from talker.reporting import ReportError, Row, build_table, collect_runs, load_table_spec

HERE = Path(__file__).resolve().parent
RUNS = HERE / "fixtures" / "runs"
GOLDEN = HERE / "golden"
TABLES = ("table1", "table2", "table4", "table5", "table8")


@pytest.fixture(scope="module")
def runs():
    return collect_runs(RUNS)


def test_runs_are_keyed_by_config_choices_overrides_and_tags(runs) -> None:
    assert len(runs) == 16
    row = runs.set_index("run").loc["ablation/conditioning=landmark_hash,schedule=progressive,seed=0"]
    assert (row["conditioning"], row["schedule"], row["name"], row["seed"]) == ("landmark_hash", "progressive", "ablation", 0)
    assert row["psnr"] == 27.0 and row["time_render_module_ms"] == pytest.approx(121.5)
    unavailable = runs.set_index("run").loc["ablation/conditioning=landmark_hash,schedule=progressive,seed=1"]
    assert math.isnan(unavailable["sync_conf"]) and unavailable["unavailable"] == "sync"  # never a made-up value
    assert set(runs["field.position_encoder.level_dim"].dropna()) == {2, 4, 8}
    assert set(runs["method"].dropna()) == {"wav2lip", "r2talker", "geneface_pp"}
    assert "hydra/launcher" not in runs.columns


def test_cells_are_mean_and_sample_std_over_seeds(runs) -> None:
    table = build_table(runs, "table4")
    cell = table.cells[("+ Landmark encoding", "PSNR")]
    assert (cell.mean, cell.n) == (pytest.approx(26.2), 2)
    assert cell.std == pytest.approx(math.sqrt(2 * 0.1**2 / 1))  # n - 1 in the denominator
    # The quickstart run has the same choices (psnr 20) but is not part of the ablation: excluded.
    assert table.cells[("+ M-AGLO", "PSNR")].mean == pytest.approx(26.7)
    # One seed lacks Sync: its cell averages the other, and says so.
    assert table.cells[("+ Progressive optimization", "Sync")].n == 1 and table.runs["+ Progressive optimization"] == 2
    assert table.cells[("RAD-NeRF", "PSNR")].n == 0  # no runs of that arm yet
    ours, paper = table.marks()
    assert ours[("+ M-AGLO", "LPIPS")] == "best" and ours[("+ Progressive optimization", "LPIPS")] == "second"  # lower is better
    assert ours[("+ Progressive optimization", "PSNR")] == "best" and ("RAD-NeRF", "PSNR") not in ours
    assert paper[("+ M-AGLO", "LPIPS")] == "best"
    frame = table.frame()
    assert frame.loc["+ M-AGLO", ("PSNR", "paper")] == 26.7414 and frame.loc["+ M-AGLO", ("PSNR", "n")] == 2


def test_baseline_rows_select_systems_and_mark_what_does_not_apply(runs) -> None:
    table = build_table(runs, "table1")
    # Ours is the baselines grid's r2talker cell only: the ablation runs with the same choices are not in it.
    assert table.cells[("Ours", "PSNR")].mean == pytest.approx(26.9) and table.runs["Ours"] == 1
    assert table.cells[("ER-NeRF", "FPS")].mean == pytest.approx(1000 / 160)
    # Wav2Lip's PSNR and LPIPS read N/A (the spec says so), whatever its metrics.json holds.
    assert table.cells[("Wav2Lip", "PSNR")].mean is None and table.cells[("Wav2Lip", "FID")].mean == 24.0
    wav2lip = next(line for line in table.markdown().splitlines() if line.startswith("| Wav2Lip"))
    assert wav2lip.split(" | ")[1:5] == ["N/A", "N/A", "N/A", "N/A"]  # ours and the paper's, PSNR and LPIPS
    ours, _ = table.marks()
    assert ("Wav2Lip", "PSNR") not in ours
    cross = build_table(runs, "table2")
    assert cross.cells[("Ours", "Cross Lingual")].mean == pytest.approx(4.05)
    assert cross.cells[("Ours", "Cross Gender")].runs == 1  # settings are told apart by their tag


@pytest.mark.parametrize("name", TABLES)
def test_golden_tables(runs, name: str) -> None:
    table = build_table(runs, name)
    for suffix, text in ((".md", table.markdown()), (".tex", table.latex())):
        golden = GOLDEN / f"{name}{suffix}"
        if os.environ.get("TALKER_UPDATE_GOLDEN"):
            golden.parent.mkdir(exist_ok=True)
            golden.write_text(text)
        assert text == golden.read_text(), f"{golden} differs (see the module docstring to regenerate)"


def test_bad_specifications_fail_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no such table specification"):
        load_table_spec("table99")
    bad = tmp_path / "bad.yaml"
    bad.write_text("title: x\nrows: [{label: a}]\ncolumns: [{label: PSNR, metric: psnr, better: up}]\n")
    with pytest.raises(ReportError, match="bad.yaml: column 'PSNR': better must be"):
        load_table_spec(bad)
    bad.write_text("title: x\nrows: [{label: a}]\ncolumns: [{label: PSNR, metric: psnr}]\npaper: {b: {PSNR: 1}}\n")
    with pytest.raises(ReportError, match="unknown row 'b'"):
        load_table_spec(bad)
    bad.write_text("title: x\nrows: [{label: a, not_applicable: [PSNR, FID]}]\ncolumns: [{label: PSNR, metric: psnr}]\n")
    with pytest.raises(ReportError, match="row 'a': not_applicable names unknown columns \\['FID'\\]"):
        load_table_spec(bad)
    bad.write_text("title: x\nrows: [{label: a}]\ncolumns: [{label: PSNR, metric: psnr}]\nspread: sem\n")
    with pytest.raises(ReportError, match="bad.yaml: spread must be one of std, ci95, not 'sem'"):
        load_table_spec(bad)
    with pytest.raises(ReportError, match="does not exist"):
        collect_runs(tmp_path / "nowhere")


def test_ci95_spread_shows_the_confidence_interval_of_the_mean(tmp_path: Path) -> None:
    spec = tmp_path / "mos.yaml"
    spec.write_text("title: MOS\nspread: ci95\nrows: [{label: A, where: {method: a}}]\ncolumns: [{label: Q, metric: q, digits: 3}]\n")
    scores = pd.DataFrame({"method": ["a"] * 4, "q": [2.0, 3.0, 4.0, 5.0]})
    table = build_table(scores, load_table_spec(spec))
    # mean 3.5, s = sqrt(5/3), t(0.975, 3) = 3.182446 (tables): h = 3.182446 * s / 2 = 2.054
    assert table.cells[("A", "Q")].ci95 == pytest.approx(3.182446 * math.sqrt(5 / 3) / 2, abs=1e-5)
    assert "| A | **3.500 ± 2.054** | 4 |" in table.markdown()
    assert table.frame().loc["A", ("Q", "ci95")] == pytest.approx(2.054, abs=1e-3)


def test_optional_columns_and_the_ground_truth_row_appear_with_their_metrics() -> None:
    runs = pd.DataFrame([
        {"name": "baselines", "system": "r2talker", "psnr": 27.0, "lmd": 0.6, "lmd_gt": 0.9, "jitter_face": 0.30, "jitter_face_ref": 0.20,
         "seam": 1.5, "seam_ref": 1.0},
        {"name": "baselines", "system": "rad_nerf", "psnr": 25.0, "jitter_face": 0.25, "jitter_face_ref": 0.20, "seam": 2.5, "seam_ref": 1.0},
    ])
    table = build_table(runs, "table1")
    labels = [c.label for c in table.spec.columns]
    assert "Jitter" in labels and "Seam" in labels and "AUE" not in labels and "Mouth jitter" not in labels  # no run has those
    assert table.cells[("Ground truth", "Jitter")].mean == pytest.approx(0.20)
    assert table.cells[("Ground truth", "PSNR")].mean is None  # no psnr_ref: a dash
    assert table.cells[("Ground truth", "LMD")].mean is None  # lmd_gt is the render against exact landmarks, not this
    ours, _ = table.marks()
    assert ours[("RAD-NeRF", "Jitter")] == "best" and ("Ground truth", "Jitter") not in ours  # the reference is not ranked
    assert "| Ground truth | – |" in table.markdown()
    without = build_table(runs.drop(columns=["jitter_face", "jitter_face_ref", "seam", "seam_ref"]), "table1")
    assert "Ground truth" not in [r.label for r in without.spec.rows] and "Jitter" not in [c.label for c in without.spec.columns]


def test_a_row_below_the_hearing_threshold_is_marked_with_a_footnote_in_every_format() -> None:
    from talker.reporting.tables import HEARING_THRESHOLD_DB

    runs = pd.DataFrame([
        {"name": "ablation", "conditioning": "audio_spatial", "schedule": "constant", "psnr": 27.0,
         "cond_gap_mouth": HEARING_THRESHOLD_DB - 0.01},
        {"name": "ablation", "conditioning": "landmark_hash", "schedule": "constant", "psnr": 26.0,
         "cond_gap_mouth": HEARING_THRESHOLD_DB + 0.01},
    ])
    rows = (Row("Deaf", {"conditioning": "audio_spatial"}), Row("Hears", {"conditioning": "landmark_hash"}))
    spec = replace(load_table_spec("table4"), rows=rows, paper={})
    table = build_table(runs, spec)
    assert table.marked == {"Deaf": ["Cond. gap"]}
    md, tex = table.markdown(), table.latex()
    assert "| Deaf‡ | **27.0000** |" in md and "| Hears |" in md
    assert "‡ Does not use its condition" in md and f"< {HEARING_THRESHOLD_DB:g} dB" in md
    assert "Deaf$^\\ddagger$ &" in tex and "{\\footnotesize $^\\ddagger$ Does not use its condition" in tex
    frame = table.frame()
    assert frame[("Cond. gap", "marked")].tolist() == [True, False]
    ours, _ = table.marks()
    assert ("Deaf", "Cond. gap") not in ours and ours[("Hears", "Cond. gap")] == "best"  # a deaf gap is never ranked
    # Without a deaf row there is no footnote.
    hearing = build_table(runs.assign(cond_gap_mouth=[3.0, 4.0]), spec)
    assert hearing.marked == {} and "‡" not in hearing.markdown() and "ddagger" not in hearing.latex()


def test_every_table_of_a_conditioned_head_shows_the_gap_with_the_marker() -> None:
    for name in ("table1", "table4", "table8", "lokitalk_table2"):
        gap = [c for c in load_table_spec(name).columns if c.metric == "cond_gap_mouth"]
        assert len(gap) == 1 and gap[0].marker == "deaf" and not gap[0].optional, name
    eyes = [c for c in load_table_spec("lokitalk_table2").columns if c.metric == "cond_gap_eyes"]
    assert len(eyes) == 1 and eyes[0].marker == "blind"


def test_eyes_that_ignore_the_eye_ratio_are_marked_and_a_row_without_an_eye_signal_is_not() -> None:
    """LokiTalk's Table 2 marks a row below the threshold in the eye gap column with §; O has no eye gap."""
    from talker.reporting.tables import HEARING_THRESHOLD_DB

    base = {"name": "lokitalk_ablation", "psnr": 30.0, "cond_gap_mouth": 5.0}
    runs = pd.DataFrame([
        {**base, "conditioning": "lokitalk", "cond_gap_eyes": HEARING_THRESHOLD_DB - 0.01},
        {**base, "conditioning": "lokitalk_unified", "cond_gap_eyes": HEARING_THRESHOLD_DB + 0.01},
        {**base, "conditioning": "audio_spatial"},
    ])
    table = build_table(runs, "lokitalk_table2")
    assert table.marked == {"O+D+R": ["Eye gap"]}
    md, tex = table.markdown(), table.latex()
    assert "| O+D+R§ |" in md and "| O+D |" in md and "| O |" in md
    assert "§ Does not use its eye signal" in md and "cond_gap_eyes < 0.5 dB" in md
    assert "O+D+R$^\\S$ &" in tex


def test_an_unknown_marker_fails_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("title: x\nrows: [{label: a}]\ncolumns: [{label: Gap, metric: cond_gap_mouth, marker: mute}]\n")
    with pytest.raises(ReportError, match="bad.yaml: column 'Gap': marker must be one of deaf, blind, not 'mute'"):
        load_table_spec(bad)
