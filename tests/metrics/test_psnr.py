import torch
from torchmetrics.functional.image import peak_signal_noise_ratio

from talker.metrics import PSNR, EvalFrame, Evaluator, psnr


def test_psnr_matches_torchmetrics() -> None:
    gen = torch.Generator().manual_seed(0)
    a, b = torch.rand(32, 32, 3, generator=gen), torch.rand(32, 32, 3, generator=gen)
    ours = psnr(a, b).item()
    reference = peak_signal_noise_ratio(a, b, data_range=1.0).item()
    assert abs(ours - reference) < 1e-4


def test_regions_and_per_frame_rows() -> None:
    target = torch.zeros(40, 40, 3)
    pred = target.clone()
    pred[30:, :] = 0.5  # error only in the lower part
    lms = torch.stack([torch.linspace(5, 35, 68), torch.linspace(2, 20, 68)], -1)  # mouth points (48-67) at y 16-20
    result = Evaluator([PSNR()]).evaluate([EvalFrame(7, pred, target, lms)])
    assert result.per_frame[0]["frame_id"] == 7
    assert result.summary["psnr"] < 20 and result.summary["psnr_mouth"] > 100  # the error is outside the mouth box
