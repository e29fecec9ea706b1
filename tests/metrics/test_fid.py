"""FID against pytorch-fid's own pipeline on PNG folders, with Inception weights the test makes."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from talker.metrics import FID, EvalContext, EvalFrame, Evaluator, MetricUnavailableWarning
from talker.metrics.fid import INCEPTION_FILE

pytest.importorskip("torchvision")
inception = pytest.importorskip("pytorch_fid.inception")
fid_score = pytest.importorskip("pytorch_fid.fid_score")
# pytorch-fid's own calls (scipy's sqrtm of few-sample, singular covariances) warn; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::scipy.linalg.LinAlgWarning")


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random weights of pytorch-fid's FID Inception, saved under the file name it loads."""
    path = tmp_path_factory.mktemp("inception") / INCEPTION_FILE
    mp = pytest.MonkeyPatch()
    # Build the architecture without its download: the loader returns nothing and loading is skipped.
    mp.setattr(inception, "load_state_dict_from_url", lambda *a, **k: None)
    mp.setattr(torch.nn.Module, "load_state_dict", lambda self, state, *a, **k: None)
    try:
        torch.manual_seed(0)
        net = inception.fid_inception_v3()
    finally:
        mp.undo()
    # Random weights make activations vanish towards denormals (slow, and features ~1e-8). Set each
    # batch norm's statistics from one batch of images instead, so every layer's output is O(1).
    for bn in (m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average: after one batch, exactly its statistics
    net.train()
    with torch.no_grad():
        net(torch.rand(2, 3, 128, 128) * 2 - 1)  # any size above 75 px sets the scale
    torch.save(net.state_dict(), path)
    return path


def frame_pairs(n: int = 6) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(n):
        target = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
        pred = np.clip(target.astype(int) + rng.integers(-40, 40, target.shape), 0, 255).astype(np.uint8)
        pairs.append((pred, target))
    return pairs


@pytest.fixture()
def png_folders(tmp_path: Path) -> tuple[Path, Path, list[EvalFrame]]:
    """The same frame pairs as PNG folders (what ``python -m pytorch_fid`` reads) and as EvalFrames."""
    pairs = frame_pairs()
    for name, k in (("pred", 0), ("target", 1)):
        (tmp_path / name).mkdir()
        for i, pair in enumerate(pairs):
            Image.fromarray(pair[k]).save(tmp_path / name / f"{i}.png")
    to = lambda x: torch.from_numpy(x).float() / 255.0  # noqa: E731
    return tmp_path / "pred", tmp_path / "target", [EvalFrame(i, to(p), to(t)) for i, (p, t) in enumerate(pairs)]


def test_pool3_activations_match_pytorch_fid(torch_home: Path, inception_file: Path, png_folders) -> None:
    (torch_home / INCEPTION_FILE).symlink_to(inception_file)
    pred_dir, target_dir, frames = png_folders
    metric = FID(dims=2048, batch_size=1, device="cpu")
    metric.prepare(EvalContext())
    for frame in frames[:2]:  # Inception-v3 at 299 x 299 is slow on a CPU: two frames, one per batch
        assert metric.update(frame) == {}  # a set-level metric: nothing per frame
    ours = metric.activations()
    reference_net = inception.InceptionV3([inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()  # loads from $TORCH_HOME
    for folder, activations in zip((pred_dir, target_dir), ours):
        files = sorted(folder.glob("*.png"), key=lambda p: int(p.stem))[:2]
        expected = fid_score.get_activations(files, reference_net, batch_size=len(files), dims=2048, device="cpu", num_workers=0)
        assert activations.shape == (2, 2048) and activations.std() > 1e-3
        np.testing.assert_allclose(activations, expected, rtol=1e-4, atol=1e-5)


# With few frames the covariances are singular and scipy's matrix square root of a 2048 x 2048
# (or 768 x 768) product takes a minute (25 s) on two cores, so the end-to-end comparison uses
# pytorch-fid's first block (64-d); the pool3 features are compared above.
def test_fid_matches_pytorch_fid_on_png_folders(torch_home: Path, inception_file: Path, png_folders) -> None:
    (torch_home / INCEPTION_FILE).symlink_to(inception_file)
    pred_dir, target_dir, frames = png_folders
    ours = Evaluator([FID(dims=64, device="cpu")]).evaluate(frames)
    assert not ours.unavailable
    expected = fid_score.calculate_fid_given_paths([str(pred_dir), str(target_dir)], batch_size=6, device="cpu", dims=64, num_workers=0)
    assert ours.summary["fid"] == pytest.approx(expected, rel=1e-4, abs=1e-4)
    assert ours.summary["fid"] > 0


def test_fid_of_a_set_with_itself_is_zero(torch_home: Path, inception_file: Path) -> None:
    (torch_home / INCEPTION_FILE).symlink_to(inception_file)
    images = [torch.from_numpy(t).float() / 255.0 for _, t in frame_pairs(4)]
    result = Evaluator([FID(dims=64, device="cpu", batch_size=3)]).evaluate([EvalFrame(i, x, x.clone()) for i, x in enumerate(images)])
    assert abs(result.summary["fid"]) < 1e-3


def test_missing_inception_weights_are_reported(torch_home: Path) -> None:
    image = torch.zeros(8, 8, 3)
    with pytest.warns(MetricUnavailableWarning, match=INCEPTION_FILE):
        result = Evaluator([FID(device="cpu")]).evaluate([EvalFrame(0, image, image)])
    assert "fid" not in result.summary and str(torch_home / INCEPTION_FILE) in result.unavailable["fid"]
