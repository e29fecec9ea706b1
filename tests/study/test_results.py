"""Table 3 from a fixed set of ratings, against MOS and 95% CIs computed by hand; exclusions; agreement."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from talker.study.__main__ import main
from talker.study.design import load_study
from talker.study.results import analyse, write_results
from talker.study.store import Store

# Scores per (method, clip index) of the three honest raters, lip_sync only; other criteria below.
LIP_SYNC = {
    "r2talker": [(5, 4), (4, 4), (5, 5)],  # 4.5, s = sqrt(0.3)
    "rad_nerf": [(3, 3), (3, 3), (3, 3)],  # 3.0, s = 0
    "er_nerf": [(1, 2), (3, 2), (1, 3)],  # 2.0, s = sqrt(0.8)
}
T_975_5 = 2.570582  # Student's t, 97.5% quantile, 5 degrees of freedom (tables)


@pytest.fixture()
def rated(study_dir: Path, tmp_path: Path):
    """Three raters who pass the attention checks and one who rates the broken clip 4."""
    study = load_study(study_dir)
    store = Store(study, f"sqlite:///{tmp_path / 'ratings.sqlite'}")
    by_pair = {(i.method, i.clip): i for i in study.items if i.kind == "method"}
    checks = {i.kind: i for i in study.items if i.kind != "method"}
    raters = [store.new_rater() for _ in range(4)]
    for number, rater in enumerate(raters):
        for (method, clip), item in by_pair.items():
            k = study.clips.index(clip)
            honest = number < 3
            store.save(rater, item.id, "lip_sync", LIP_SYNC[method][number][k] if honest else 5)
            store.save(rater, item.id, "image_quality", 4 if honest else 5)
            store.save(rater, item.id, "video_realness", (5 if method == "r2talker" else 2) if honest else 5)
        for criterion in study.criterion_keys:
            store.save(rater, checks["ground_truth"].id, criterion, 5)
            store.save(rater, checks["broken"].id, criterion, 1 if number < 3 else 4)
    yield study, store
    store.close()


def test_mos_and_ci_match_the_hand_computation(rated) -> None:
    study, store = rated
    results = analyse(study, store.ratings(), store.rater_numbers())
    assert results.excluded == {3: "rated the broken clip 4.00 > 2"}
    assert results.included == [0, 1, 2]
    cells = results.table.cells
    ours = cells[("Ours", "Lip-sync Accuracy")]
    assert ours.n == 6 and ours.mean == pytest.approx(4.5)
    assert ours.ci95 == pytest.approx(T_975_5 * math.sqrt(0.3 / 6), abs=1e-5)
    assert cells[("RAD-NeRF", "Lip-sync Accuracy")].ci95 == 0.0
    assert cells[("ER-NeRF", "Lip-sync Accuracy")].ci95 == pytest.approx(T_975_5 * math.sqrt(0.8 / 6), abs=1e-5)
    assert cells[("ER-NeRF", "Video Realness")].mean == pytest.approx(2.0)
    markdown = results.table.markdown()
    # ties share the mark: every row has image quality 4.00, so every one is bold
    assert "| Ours | **4.50 ± 0.57** | **3.53** | **4.00 ± 0.00** | **4.12** | **5.00 ± 0.00** | **3.56** | 6 |" in markdown
    assert "| ER-NeRF | 2.00 ± 0.94 | 3.01 |" in markdown
    assert "Wav2Lip" not in markdown  # no such method in this study
    assert "| Video Realness (paper) | rated clips |" in markdown  # 6 = 3 raters x 2 clips per method
    assert "\\textbf{4.50 $\\pm$ 0.57}" in results.table.latex()


def test_agreement_is_krippendorffs_alpha(rated) -> None:
    study, store = rated
    results = analyse(study, store.ratings(), store.rater_numbers())
    assert results.agreement["video_realness"] == pytest.approx(1.0)  # the three included raters agree exactly
    assert results.agreement["image_quality"] is None  # one value only: alpha undefined
    assert -1.0 <= results.agreement["lip_sync"] < 1.0


def test_raters_not_through_the_checks_are_left_out(study_dir: Path, tmp_path: Path) -> None:
    study = load_study(study_dir)
    store = Store(study, f"sqlite:///{tmp_path / 'ratings.sqlite'}")
    rater = store.new_rater()
    first = next(i for i in study.items if i.kind == "method")
    store.save(rater, first.id, "lip_sync", 5)
    results = analyse(study, store.ratings(), store.rater_numbers())
    assert "has not rated the ground-truth clip" in results.excluded[0]
    assert results.table.cells[("Ours", "Lip-sync Accuracy")].mean is None
    store.close()


def test_results_command_writes_the_table_csv_and_summary(rated, capsys: pytest.CaptureFixture) -> None:
    study, store = rated
    out = study.root.parent / "results_cli"
    main(["results", f"study={study.root}", f"db={store.url}", f"out={out}"])
    printed = capsys.readouterr().out
    assert "Table 3. User study" in printed and "rater R004: rated the broken clip 4.00 > 2" in printed
    assert "**4.50 ± 0.57**" in (out / "table3.md").read_text()
    assert (out / "table3.tex").is_file()
    raw = pd.read_csv(out / "ratings.csv")
    assert len(raw) == 4 * len(study.items) * 3
    assert set(raw.columns) >= {"rater", "item", "method", "clip", "criterion", "score"}
    assert "Krippendorff" in (out / "summary.md").read_text()


def test_write_results_lists_every_file(rated, tmp_path: Path) -> None:
    study, store = rated
    written = write_results(analyse(study, store.ratings(), store.rater_numbers()), tmp_path / "r")
    assert [p.name for p in written] == ["table3.md", "table3.tex", "summary.md", "summary.json", "ratings.csv"]
