import pytest
import torch
from torchmetrics.functional.image import structural_similarity_index_measure

from talker.data.landmarks import MOUTH, landmark_box
from talker.metrics import SSIM, EvalFrame, Evaluator


def reference(pred: torch.Tensor, target: torch.Tensor) -> float:
    nchw = lambda x: x.permute(2, 0, 1).unsqueeze(0).double()  # noqa: E731
    return structural_similarity_index_measure(nchw(pred), nchw(target), data_range=1.0).item()


def test_ssim_matches_torchmetrics_on_every_region() -> None:
    gen = torch.Generator().manual_seed(0)
    frames = []
    for i in range(3):
        target = torch.rand(64, 64, 3, generator=gen)
        pred = (target + 0.1 * torch.randn(64, 64, 3, generator=gen)).clamp(0, 1)
        lms = torch.stack([torch.linspace(10, 54, 68), torch.linspace(8, 56, 68)], -1)
        frames.append(EvalFrame(i, pred, target, lms))
    result = Evaluator([SSIM()]).evaluate(frames)
    boxes = {"ssim": (0, 64, 0, 64)}
    boxes["ssim_face"] = landmark_box(frames[0].landmarks, 64, 64, pad=0.1)
    boxes["ssim_mouth"] = landmark_box(frames[0].landmarks[MOUTH], 64, 64, pad=0.25)
    for key, (y0, y1, x0, x1) in boxes.items():
        per_frame = [reference(f.pred[y0:y1, x0:x1], f.target[y0:y1, x0:x1]) for f in frames]
        assert result.summary[key] == pytest.approx(sum(per_frame) / 3, abs=1e-4), key
        assert result.per_frame[1][key] == pytest.approx(per_frame[1], abs=1e-4), key
    assert 0.0 < result.summary["ssim"] < 0.99


def test_identical_frames_score_one_and_tiny_crops_are_skipped() -> None:
    image = torch.rand(40, 40, 3, generator=torch.Generator().manual_seed(1))
    lms = torch.full((68, 2), 20.0)
    # every mouth point at one pixel: a 3 x 3 mouth box, too small for the 11 x 11 window's padding
    result = Evaluator([SSIM()]).evaluate([EvalFrame(0, image, image.clone(), lms)])
    assert result.summary["ssim"] == pytest.approx(1.0, abs=1e-9)
    assert "ssim_mouth" not in result.summary
