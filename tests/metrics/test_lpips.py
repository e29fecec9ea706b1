"""LPIPS against the lpips package itself, with an AlexNet trunk the test makes (no download)."""

from pathlib import Path

import pytest
import torch

from talker.metrics import LPIPS, EvalFrame, Evaluator, MetricUnavailableWarning
from talker.metrics.perceptual import ALEXNET_FILE

torchvision = pytest.importorskip("torchvision")
lpips = pytest.importorskip("lpips")
# The reference builds lpips the old way (pretrained=True), which torchvision warns about.
pytestmark = pytest.mark.filterwarnings("ignore:.*(pretrained|weight enum).*:UserWarning")



def place(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(source)


def frames() -> list[EvalFrame]:
    gen = torch.Generator().manual_seed(0)
    out = []
    for i in range(3):
        target = torch.rand(64, 64, 3, generator=gen)
        out.append(EvalFrame(i, (target + 0.2 * torch.rand(64, 64, 3, generator=gen)).clamp(0, 1), target))
    return out


def reference(data: list[EvalFrame]) -> list[float]:
    """lpips' own pipeline: LPIPS(net='alex') loading its trunk through torchvision from $TORCH_HOME."""
    net = lpips.LPIPS(net="alex", verbose=False).eval()
    to = lambda x: x.permute(2, 0, 1).unsqueeze(0) * 2 - 1  # noqa: E731
    with torch.no_grad():
        return [net(to(frame.pred), to(frame.target)).item() for frame in data]


def test_lpips_matches_the_lpips_package(torch_home: Path, alexnet_file: Path) -> None:
    place(alexnet_file, torch_home / ALEXNET_FILE)
    data = frames()
    result = Evaluator([LPIPS(device="cpu")]).evaluate(data)
    assert not result.unavailable
    expected = reference(data)
    for row, value in zip(result.per_frame, expected):
        assert row["lpips"] == pytest.approx(value, abs=1e-4)
    assert result.summary["lpips"] == pytest.approx(sum(expected) / 3, abs=1e-4)
    assert result.summary["lpips"] > 0


def test_lpips_reads_a_configured_file_and_leaves_the_cache_alone(torch_home: Path, tmp_path: Path, alexnet_file: Path) -> None:
    elsewhere = tmp_path / "weights" / "my_alexnet.pth"
    place(alexnet_file, elsewhere)
    data = frames()
    result = Evaluator([LPIPS(weights=str(elsewhere), device="cpu")]).evaluate(data)
    assert not list(torch_home.iterdir())  # nothing written into the cache
    assert torch.hub.get_dir() == str(torch_home.parent)  # the hub directory follows $TORCH_HOME again
    place(alexnet_file, torch_home / ALEXNET_FILE)
    assert result.per_frame[0]["lpips"] == pytest.approx(reference(data[:1])[0], abs=1e-4)


def test_missing_alexnet_is_unavailable_and_names_the_file(torch_home: Path) -> None:
    with pytest.warns(MetricUnavailableWarning, match=ALEXNET_FILE):
        result = Evaluator([LPIPS(device="cpu")]).evaluate(frames())
    assert "lpips" not in result.summary
    assert str(torch_home / ALEXNET_FILE) in result.unavailable["lpips"]
