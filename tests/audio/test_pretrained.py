"""HuBERT / wav2vec2 through the real loading path, with tiny random models the tests save themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from talker.audio import SAMPLE_RATE, HuBERT, LogMel, Wav2Vec2, WeightsMissing

transformers = pytest.importorskip("transformers")

TINY = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=37,
    conv_dim=(8,) * 7,
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=2,
    feat_extract_norm="layer",  # per-row normalisation: a row depends on its own 25 ms only
    vocab_size=11,
)


def save_tiny(kind: str, folder: Path) -> Path:
    """A tiny random model in save_pretrained layout, positional convolution zeroed so that
    hidden_states[0] is a local function of each row's 25 ms of audio."""
    torch.manual_seed(0)
    if kind == "hubert":
        model = transformers.HubertModel(transformers.HubertConfig(**TINY))
    else:
        model = transformers.Wav2Vec2ForCTC(transformers.Wav2Vec2Config(**TINY))
    encoder = model.encoder if kind == "hubert" else model.wav2vec2.encoder
    with torch.no_grad():
        for name, p in encoder.pos_conv_embed.named_parameters():
            if not name.endswith(("original1", "weight_v")):  # weight norm: zero the gain, not the direction
                p.zero_()
    model.save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(do_normalize=False).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_hubert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny("hubert", tmp_path_factory.mktemp("hubert"))


@pytest.mark.parametrize("seconds", [0.5, 1.0, 2.37])
def test_hubert_windows_have_the_video_frame_count(tiny_hubert: Path, seconds: float) -> None:
    audio = np.random.default_rng(0).standard_normal(int(seconds * SAMPLE_RATE)).astype(np.float32) * 0.1
    extractor = HuBERT(str(tiny_hubert))
    windows = extractor(audio)
    assert windows.shape == (int(np.ceil(seconds * 25)), 16, 32) and windows.dtype == np.float32
    assert windows.shape[0] == LogMel()(audio).shape[0]
    assert extractor.dim == 32 and extractor.file_name == "aud_hu.npy"
    assert np.isfinite(windows).all()


@pytest.mark.parametrize("frame", [0, 5, 17])
def test_hubert_window_is_centred_on_its_frame(tiny_hubert: Path, frame: int) -> None:
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    burst = (np.sin(2 * np.pi * 1000 * t) * (np.abs(t - frame / 25) < 0.005)).astype(np.float32)
    extractor = HuBERT(str(tiny_hubert), layer=0)
    change = np.abs(extractor(burst) - extractor(np.zeros_like(burst))).sum(-1)  # [25, 16]
    assert change[frame].argmax() == 8  # row 2i sits at index 8 of window i (as LogMel's)
    assert change[frame + 1].argmax() == 6
    assert change[frame + 5].max() < 1e-3 * change[frame].max()  # 200 ms later it has left the window


def test_long_audio_is_encoded_in_chunks(tiny_hubert: Path) -> None:
    audio = np.random.default_rng(1).standard_normal(5 * SAMPLE_RATE).astype(np.float32) * 0.1
    whole = HuBERT(str(tiny_hubert), layer=0).rows(audio)
    chunked = HuBERT(str(tiny_hubert), layer=0, chunk_seconds=1.0).rows(audio)
    assert chunked.shape == whole.shape == (251, 32)
    np.testing.assert_allclose(chunked, whole, atol=1e-4)  # local features: chunk seams are invisible


def test_wav2vec2_logits(tmp_path: Path) -> None:
    folder = save_tiny("wav2vec2", tmp_path / "w2v")
    extractor = Wav2Vec2(str(folder))
    windows = extractor(np.zeros(SAMPLE_RATE // 2, dtype=np.float32))
    assert windows.shape == (13, 16, 11) and extractor.dim == 11 and extractor.file_name == "aud_eo.npy"


def test_missing_weights_name_the_model_and_how_to_fetch_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsMissing, match=r"'facebook/hubert-large-ls960-ft' are not in the Hugging Face cache .*huggingface-cli download facebook/hubert-large-ls960-ft"):
        HuBERT().load()
    with pytest.raises(WeightsMissing, match="nowhere: model folder does not exist"):
        HuBERT(str(tmp_path / "nowhere")).load()
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsMissing, match="empty: not a saved HubertModel"):
        HuBERT(str(tmp_path / "empty")).load()
