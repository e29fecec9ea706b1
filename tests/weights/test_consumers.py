"""Every user of a pretrained file goes through talker.weights: online it downloads on first use,
offline it fails as before (a metric unavailable, a lips stage that stops at its start, a speech
encoder that names the model), each naming the file and where to get it."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
import torch

from talker.weights import files

from .conftest import WeightsServer
from .test_download import served


def test_syncnet_downloads_on_first_use_and_loads(server: WeightsServer, caches: dict[str, Path],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from talker.metrics.sync import SyncNet, load_syncnet

    torch.manual_seed(0)
    made = SyncNet()
    buffer = io.BytesIO()
    torch.save(made.state_dict(), buffer)
    served(monkeypatch, files.SYNCNET_V2, server, buffer.getvalue())
    net = load_syncnet()
    assert torch.equal(net.netfcaud[0].weight, made.netfcaud[0].weight)
    assert (caches["torch_hub"] / "syncnet_v2.model").is_file()
    load_syncnet()
    assert len(server.requests) == 1


def test_the_face_landmarker_bundle_downloads_into_the_models_folder(server: WeightsServer, caches: dict[str, Path],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from ..conftest import SHARED

    bundle = SHARED / "models" / "face_landmarker.task" if SHARED else None
    if bundle is None or not bundle.is_file():
        pytest.skip("shared/models/face_landmarker.task not available")
    pytest.importorskip("cv2")
    from talker.data.face_landmarker import FaceLandmarker, import_mediapipe

    try:
        import_mediapipe()
    except Exception as exc:  # noqa: BLE001 - any reason mediapipe cannot run here
        pytest.skip(f"mediapipe unavailable: {exc}")
    # The real bundle, checked against the registered (published) sha256 and size: nothing patched but the URL.
    monkeypatch.setattr(files.FACE_LANDMARKER, "url", server.serve("face_landmarker.task", bundle.read_bytes()))
    task = caches["models"] / "face_landmarker.task"
    landmarker = FaceLandmarker(task)
    landmarker.close()
    assert task.read_bytes() == bundle.read_bytes() and server.requests == ["/face_landmarker.task"]
    # A file of the user's own name is never fetched: it is named.
    from talker.data.face_landmarker import LandmarkerUnavailable

    with pytest.raises(LandmarkerUnavailable, match="mine.task"):
        FaceLandmarker(caches["models"] / "mine.task")
    assert len(server.requests) == 1


def test_the_lips_stage_fetches_its_lpips_weights_when_the_fit_starts(server: WeightsServer, caches: dict[str, Path],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from talker.losses import PerceptualWeightsMissing, lpips_weights_file

    served(monkeypatch, files.LPIPS_ALEXNET, server, b"alexnet weights" * 1000)
    assert lpips_weights_file() == caches["torch_hub"] / "alexnet-owt-7be5be79.pth"
    monkeypatch.setattr(files.LPIPS_ALEXNET, "url", server.url("gone/alexnet-owt-7be5be79.pth"))
    (caches["torch_hub"] / "alexnet-owt-7be5be79.pth").unlink()
    with pytest.raises(PerceptualWeightsMissing, match=r"lips stage .*HTTP 404.*alexnet-owt-7be5be79\.pth"):
        lpips_weights_file()


@pytest.mark.parametrize("metric", ["lpips", "fid", "sync"])
def test_offline_a_metric_is_unavailable_naming_file_and_url(metric: str, caches: dict[str, Path]) -> None:
    pytest.importorskip("torchvision")
    from talker.metrics import FID, LPIPS, EvalContext, MetricUnavailable, Sync

    made = {"lpips": LPIPS, "fid": FID, "sync": Sync}[metric]()
    entry = {"lpips": files.LPIPS_ALEXNET, "fid": files.FID_INCEPTION, "sync": files.SYNCNET_V2}[metric]
    if metric == "sync":
        pytest.importorskip("python_speech_features")
    context = EvalContext(fps=25, audio=torch.zeros(16000).numpy(), sample_rate=16000) if metric == "sync" else EvalContext()
    with pytest.raises(MetricUnavailable) as info:
        made.prepare(context)
    message = str(info.value)
    assert str(caches["torch_hub"] / entry.file_name) in message and entry.url in message and "offline: TALKER_OFFLINE=1" in message


def test_offline_by_talker_alone_the_speech_encoders_do_not_wait_on_the_hub(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from talker.audio import HuBERT, WeightsMissing

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # only TALKER_OFFLINE=1 says offline
    started = time.perf_counter()
    with pytest.raises(WeightsMissing, match=r"hubert-large-ls960-ft' are not in the Hugging Face cache .*offline: TALKER_OFFLINE=1"):
        HuBERT(device="cpu").load()
    with pytest.raises(files.WeightsUnavailable, match=r"offline: TALKER_OFFLINE=1.*python -m talker.weights fetch hubert"):
        files.HUBERT.ensure()
    assert time.perf_counter() - started < 10  # no retries against the hub (they take 20-160 s)
