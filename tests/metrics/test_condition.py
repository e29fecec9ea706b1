"""ConditionGap on hand-made frames: the mouth box of psnr_mouth, and unavailable without a second render."""

from __future__ import annotations

import pytest
import torch

from talker.data.landmarks import mouth_box
from talker.metrics import PSNR, ConditionGap, EvalContext, EvalFrame, Evaluator, MetricUnavailableWarning


def lips(height: int = 48) -> torch.Tensor:
    lms = torch.zeros(68, 2)
    lms[:, 0] = torch.linspace(10, 30, 68)
    lms[:, 1] = height / 2
    return lms


def test_gap_is_own_minus_other_in_the_mouth_box_of_psnr_mouth() -> None:
    target = torch.full((48, 48, 3), 0.5)
    pred = target + 0.1  # PSNR 20 dB everywhere
    other = pred.clone()
    y0, y1, x0, x1 = mouth_box(lips(), 48, 48)
    other[y0:y1, x0:x1] = target[y0:y1, x0:x1] + 0.2  # only the mouth box changes
    other[0, 0] = 1.0  # outside the box: ignored
    result = Evaluator([PSNR(), ConditionGap()]).evaluate([EvalFrame(0, pred, target, lips(), pred_other_condition=other)])
    own = result.summary["psnr_mouth"]
    assert own == pytest.approx(20.0, abs=1e-4)
    assert result.summary["psnr_mouth_other"] == pytest.approx(-10 * torch.log10(torch.tensor(0.04)).item(), abs=1e-4)  # 13.98
    assert result.summary["cond_gap_mouth"] == pytest.approx(own - result.summary["psnr_mouth_other"])
    assert result.per_frame[0]["cond_gap_mouth"] == result.summary["cond_gap_mouth"]


def test_frames_without_a_second_render_report_the_gap_unavailable() -> None:
    frame = EvalFrame(0, torch.rand(48, 48, 3), torch.rand(48, 48, 3), lips())  # external / driven frames
    with pytest.warns(MetricUnavailableWarning, match="cond_gap unavailable"):
        result = Evaluator([PSNR(), ConditionGap()]).evaluate([frame])
    assert "another held-out frame's condition" in result.unavailable["cond_gap"]
    assert "cond_gap_mouth" not in result.summary and "psnr_mouth" in result.summary
    with pytest.warns(MetricUnavailableWarning):
        driven = Evaluator([ConditionGap()]).evaluate([EvalFrame(0, torch.rand(48, 48, 3))], EvalContext(has_reference=False))
    assert "ground-truth" in driven.unavailable["cond_gap"]


def eyes_row(height: int = 48) -> torch.Tensor:
    lms = lips(height)
    lms[36:48, 1] = height / 3  # the eyes above the mouth
    return lms


def test_eye_gap_is_own_minus_other_in_the_eyes_box_only() -> None:
    from talker.data.landmarks import eyes_box
    from talker.metrics import EyeConditionGap

    target = torch.full((48, 48, 3), 0.5)
    pred = target + 0.1  # 20 dB everywhere
    other_eyes = pred.clone()
    y0, y1, x0, x1 = eyes_box(eyes_row(), 48, 48)
    other_eyes[y0:y1, x0:x1] = target[y0:y1, x0:x1] + 0.2  # 13.98 dB in the eyes box
    other_eyes[47, 47] = 1.0  # outside the box: ignored
    assert y1 < 47
    frame = EvalFrame(0, pred, target, eyes_row(), pred_other_condition=pred, pred_other_eyes=other_eyes, eye_ratio_swap=0.3)
    result = Evaluator([EyeConditionGap()]).evaluate([frame])
    assert result.summary["eye_ratio_swap"] == pytest.approx(0.3)  # how far the swapped eye ratio was
    assert result.summary["psnr_eyes"] == pytest.approx(20.0, abs=1e-4)
    assert result.summary["psnr_eyes_other"] == pytest.approx(-10 * torch.log10(torch.tensor(0.04)).item(), abs=1e-4)
    assert result.summary["cond_gap_eyes"] == pytest.approx(result.summary["psnr_eyes"] - result.summary["psnr_eyes_other"])
