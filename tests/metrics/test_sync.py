"""Sync: SyncNet's layout, the crop and MFCC conventions, and the score against syncnet_python's procedure.

syncnet_python is not a package, so the reference here is its ``SyncNetInstance.evaluate`` loop
re-stated step by step (windows, lastframe, distance padding, mean/median/min) on the same crops,
audio and test-made weights.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from talker.metrics import EvalContext, EvalFrame, Evaluator, MetricUnavailableWarning, Sync
from talker.metrics.sync import SYNCNET_FILE, SyncNet, face_boxes, face_crop, mfcc

python_speech_features = pytest.importorskip("python_speech_features")


def test_released_checkpoint_layout_and_embedding_shapes() -> None:
    net = SyncNet().eval()
    state = net.state_dict()
    # Names and shapes of syncnet_v2.model's tensors: convolutions at 0, 4, 8, 11, 14, 18 of each
    # stream's Sequential, each followed by its batch norm.
    for stream in ("netcnnaud", "netcnnlip"):
        convs = [int(k.split(".")[1]) for k in state if k.startswith(stream) and state[k].ndim >= 4]
        assert convs == [0, 4, 8, 11, 14, 18], stream
    assert state["netcnnaud.0.weight"].shape == (64, 1, 3, 3)
    assert state["netcnnaud.18.weight"].shape == (512, 256, 5, 4)
    assert state["netcnnlip.0.weight"].shape == (96, 3, 5, 7, 7)
    assert state["netcnnlip.18.weight"].shape == (512, 256, 1, 6, 6)
    assert state["netfcaud.3.weight"].shape == state["netfclip.3.weight"].shape == (1024, 512)
    assert sum(1 for k in state if k.endswith("running_mean")) == 14
    with torch.no_grad():
        assert net.forward_aud(torch.zeros(2, 1, 13, 20)).shape == (2, 1024)
        assert net.forward_lip(torch.zeros(2, 3, 5, 224, 224)).shape == (2, 1024)


def test_mfcc_runs_on_the_int16_samples_of_the_wav() -> None:
    pcm = (np.random.default_rng(0).standard_normal(8000) * 3000).astype(np.int16)
    ours = mfcc(pcm / 32768.0)  # how talker holds audio: float in [-1, 1]
    np.testing.assert_array_equal(ours, python_speech_features.mfcc(pcm, 16000).T)
    assert ours.shape[0] == 13


def test_face_crop_follows_syncnet_python_geometry() -> None:
    ramp = np.tile(np.arange(100, dtype=np.uint8)[None, :, None], (100, 1, 3))  # value = column
    crop = face_crop(ramp, np.array([50.0, 50.0, 20.0]))
    # Columns x0 = 50 - 20 * 1.4 = 22 ... 78 (56 px) resized to 224: output column c samples 22 + (c + 0.5) / 4 - 0.5.
    assert crop.shape == (224, 224, 3)
    assert crop[100, 112, 0] == round(22 + 112.5 / 4 - 0.5)
    rows = np.tile(np.arange(100, dtype=np.uint8)[:, None, None], (1, 100, 3))  # value = row
    crop = face_crop(rows, np.array([50.0, 50.0, 20.0]))
    # Rows y0 = 50 - 20 = 30 ... 50 + 20 * 1.8 = 86: the box is extended downwards (chin and neck).
    assert crop[112, 100, 0] == round(30 + 112.5 / 4 - 0.5)
    corner = face_crop(rows, np.array([5.0, 5.0, 20.0]))  # crop reaching outside the frame: padded with 110
    assert corner[0, 0, 0] == 110


def test_face_boxes_are_median_filtered() -> None:
    lms = np.zeros((15, 68, 2))
    lms[:, :, 0] = np.linspace(40, 60, 68)
    lms[:, :, 1] = np.linspace(30, 70, 68)
    lms[7] += 25  # one jumpy detection
    boxes = face_boxes(lms)
    np.testing.assert_allclose(boxes[7], [50.0, 50.0, 20.0])


def reference_scores(net: SyncNet, crops: np.ndarray, audio: np.ndarray, vshift: int = 15) -> tuple[float, float, int]:
    """syncnet_python's SyncNetInstance.evaluate, restated (batch size 20)."""
    im = torch.from_numpy(crops.astype(float)).float().permute(3, 0, 1, 2).unsqueeze(0)
    pcm = np.clip(np.round(audio * 32768), -32768, 32767).astype(np.int16)
    cct = torch.from_numpy(python_speech_features.mfcc(pcm, 16000).T.astype(float)).float()[None, None]
    lastframe = min(len(crops), len(pcm) // 640) - 5
    im_feat, cc_feat = [], []
    with torch.no_grad():
        for i in range(0, lastframe, 20):
            frames = range(i, min(lastframe, i + 20))
            im_feat.append(net.forward_lip(torch.cat([im[:, :, v : v + 5] for v in frames])))
            cc_feat.append(net.forward_aud(torch.cat([cct[:, :, :, v * 4 : v * 4 + 20] for v in frames])))
    im_feat, cc_feat = torch.cat(im_feat), torch.cat(cc_feat)
    win = 2 * vshift + 1
    padded = F.pad(cc_feat, (0, 0, vshift, vshift))
    dists = [F.pairwise_distance(im_feat[[i], :].repeat(win, 1), padded[i : i + win, :]) for i in range(len(im_feat))]
    mdist = torch.mean(torch.stack(dists, 1), 1)
    minval, minidx = torch.min(mdist, 0)
    return float(torch.median(mdist) - minval), float(minval), int(vshift - minidx)


@pytest.fixture()
def sync_weights(torch_home: Path) -> SyncNet:
    torch.manual_seed(0)
    net = SyncNet()
    for bn in (m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)):
        bn.running_var.uniform_(0.5, 2.0)  # non-trivial statistics, so that loading them matters
    torch.save(net.state_dict(), torch_home / SYNCNET_FILE)
    return net.eval()


def clip(num_frames: int = 12) -> tuple[list[EvalFrame], np.ndarray]:
    rng = np.random.default_rng(0)
    frames = []
    for t in range(num_frames):
        image = torch.from_numpy(rng.random((64, 64, 3))).float()
        lms = torch.from_numpy(np.stack([np.linspace(16, 48, 68), np.linspace(14, 50, 68)], -1) + t % 3).float()
        frames.append(EvalFrame(t, image, None, lms, time_index=10 + t))
    audio = rng.standard_normal(16000 * 2) * 0.1  # 2 s from time index 0; the clip starts at 0.4 s
    return frames, audio


def test_sync_matches_syncnet_python_procedure(sync_weights: SyncNet) -> None:
    frames, audio = clip()
    result = Evaluator([Sync(device="cpu")]).evaluate(frames, EvalContext(audio=audio, has_reference=False))
    assert not result.unavailable
    boxes = face_boxes(np.stack([f.landmarks.numpy() for f in frames]))
    bgr = [np.clip(np.round(f.pred.numpy() * 255), 0, 255).astype(np.uint8)[..., ::-1] for f in frames]
    crops = np.stack([face_crop(image, box) for image, box in zip(bgr, boxes)])
    segment = audio[int(0.4 * 16000) : int(0.88 * 16000)]  # frames 10-21 at 25 fps
    conf, dist, offset = reference_scores(sync_weights, crops, segment)
    assert result.summary["sync_conf"] == pytest.approx(conf, abs=1e-4)
    assert result.summary["sync_dist"] == pytest.approx(dist, abs=1e-4)
    assert result.summary["sync_offset"] == offset
    assert result.summary["sync_conf"] >= 0


def test_sync_is_unavailable_without_weights_audio_or_enough_frames(torch_home: Path) -> None:
    frames, audio = clip(4)
    with pytest.warns(MetricUnavailableWarning):
        result = Evaluator([Sync(device="cpu")]).evaluate(frames, EvalContext(audio=None, has_reference=False))
    assert "no audio" in result.unavailable["sync"]
    with pytest.warns(MetricUnavailableWarning, match=SYNCNET_FILE):
        result = Evaluator([Sync(device="cpu")]).evaluate(frames, EvalContext(audio=audio, has_reference=False))
    assert str(torch_home / SYNCNET_FILE) in result.unavailable["sync"]
    torch.save(SyncNet().state_dict(), torch_home / SYNCNET_FILE)
    with pytest.warns(MetricUnavailableWarning):
        result = Evaluator([Sync(device="cpu")]).evaluate(frames, EvalContext(audio=audio, has_reference=False))
    assert "more than 5 frames" in result.unavailable["sync"]
