"""Pretrained speech encoders (HuBERT, wav2vec2) behind :class:`AudioFeatures`, via transformers.

``model`` is a local directory (``save_pretrained`` layout: config.json + weights, optionally
preprocessor_config.json) or a hub name, which transformers downloads into the Hugging Face cache
(``$HF_HOME/hub``) on first use. Offline (``HF_HUB_OFFLINE=1`` or ``TALKER_OFFLINE=1``, see
:mod:`talker.weights`) only the cache is read, and a missing model raises :class:`WeightsMissing`
naming the model and how to fetch it on a machine with internet.

Both encoders have a 20 ms hop (conv stride 320 at 16 kHz) and a 25 ms receptive field: frame ``j``
of the raw model sees samples ``320 j ... 320 j + 399``. The audio is padded by 200 samples on the
left so that row ``j`` is centred on ``j / 50`` s, the convention every :class:`AudioFeatures`
shares (and the one :func:`video_windows` cuts 25 fps windows from); the right pad gives the same
``1 + T // 320`` rows as :class:`LogMel`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from talker.audio.features import WINDOW, AudioFeatures
from talker.audio.io import AudioError
from talker.weights import HUBERT, WAV2VEC2, hf_hub_cache, offline_reason

HOP = 320  # samples per row at 16 kHz (the CNN feature encoder's total stride)
RECEPTIVE_FIELD = 400  # samples one row sees (25 ms)


class WeightsMissing(AudioError):
    """A pretrained model is neither a local directory nor in (or downloadable into) the Hugging Face cache."""


def fetch_hint(model: str) -> str:
    return (
        f"on a machine with internet run `huggingface-cli download {model}` (or "
        f"`python -c \"from transformers import AutoModel; AutoModel.from_pretrained('{model}').save_pretrained('<dir>')\"`) "
        f"and copy the cache to {hf_hub_cache()} or pass the saved folder as the model path"
    )


class PretrainedSpeechFeatures(AudioFeatures):
    """Rows of a transformers speech encoder at 50 Hz, cut into 25 fps windows like every extractor.

    Args:
        model: local directory or hub name (downloaded into the HF cache unless offline).
        output: ``hidden`` (a hidden state, ``layer`` of ``hidden_states``; -1 is the last) or
            ``logits`` (CTC character logits, what RAD-NeRF's wav2vec2 features are).
        layer: which hidden state for ``output=hidden``.
        device: where the encoder runs (default: CUDA when available).
        chunk_seconds: audio is encoded in chunks of this length (with one second of context each
            side) so that hour-long audio does not need quadratic attention memory.
    """

    default_model: ClassVar[str]
    model_class: ClassVar[str]  # transformers class name for output="hidden"
    ctc_class: ClassVar[str]  # ... and for output="logits"

    def __init__(
        self,
        model: str | None = None,
        output: str = "hidden",
        layer: int = -1,
        device: str | None = None,
        chunk_seconds: float = 30.0,
        window: int = WINDOW,
    ) -> None:
        super().__init__(window)
        if output not in ("hidden", "logits"):
            raise ValueError(f"output={output!r}: expected 'hidden' or 'logits'")
        self.model_name = str(model or self.default_model)
        self.output, self.layer = output, layer
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.chunk_seconds = chunk_seconds
        self._model: Any = None
        self._normalize = True

    # -- loading -----------------------------------------------------------------------------

    def load(self) -> Any:
        """The encoder in eval mode (loaded once, from the local directory or the HF cache, which
        transformers fills first unless offline)."""
        if self._model is not None:
            return self._model
        import transformers

        cls = getattr(transformers, self.ctc_class if self.output == "logits" else self.model_class)
        source = Path(self.model_name).expanduser()
        local = source.is_dir()
        if not local and (self.model_name.startswith(("/", ".", "~")) or self.model_name.count("/") > 1):
            raise WeightsMissing(f"{source}: model folder does not exist")
        offline = offline_reason()
        try:
            model = cls.from_pretrained(str(source) if local else self.model_name, local_files_only=local or bool(offline))
        except OSError as exc:
            if local:
                raise WeightsMissing(f"{source}: not a saved {cls.__name__} ({str(exc).splitlines()[0]})") from exc
            why = f"offline: {offline}" if offline else f"download failed: {(str(exc).strip().splitlines() or [''])[0]}"
            raise WeightsMissing(
                f"{type(self).__name__} weights '{self.model_name}' are not in the Hugging Face cache "
                f"({hf_hub_cache()}) ({why}); {fetch_hint(self.model_name)}"
            ) from exc
        self._normalize = self._reads_normalized(str(source) if local else self.model_name, local or bool(offline))
        self._model = model.eval().to(self.device)
        return self._model

    @staticmethod
    def _reads_normalized(where: str, local_files_only: bool) -> bool:
        """Whether the model's feature extractor normalises each utterance (the fine-tuned ones do)."""
        from transformers import AutoFeatureExtractor

        try:
            extractor = AutoFeatureExtractor.from_pretrained(where, local_files_only=local_files_only)
        except (OSError, ValueError):
            return True  # no preprocessor_config.json: Wav2Vec2FeatureExtractor's default
        return bool(getattr(extractor, "do_normalize", True))

    @property
    def dim(self) -> int:
        config = self.load().config
        return int(config.vocab_size if self.output == "logits" else config.hidden_size)

    # -- features ----------------------------------------------------------------------------

    @torch.no_grad()
    def _encode(self, audio: np.ndarray) -> np.ndarray:
        """Raw model rows of ``audio`` (already padded): ``[floor((T - 400) / 320) + 1, dim]``."""
        model = self.load()
        x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None].to(self.device)
        if self.output == "logits":
            out = model(x).logits
        else:
            out = model(x, output_hidden_states=True).hidden_states[self.layer]
        return out[0].float().cpu().numpy()

    def rows(self, audio: np.ndarray) -> np.ndarray:
        audio = np.asarray(audio, dtype=np.float32)
        if self._normalize_flag():
            audio = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)  # Wav2Vec2FeatureExtractor's do_normalize
        count = 1 + audio.shape[0] // HOP
        half = RECEPTIVE_FIELD // 2
        padded = np.pad(audio, (half, half + HOP))  # row j then covers samples 320 j - 200 ... 320 j + 199
        chunk = max(1, int(self.chunk_seconds * self.rows_per_second))
        context = self.rows_per_second  # rows of context on each side of a chunk
        if count <= chunk + 2 * context:
            return self._encode(padded)[:count].astype(np.float32)
        parts = []
        for start in range(0, count, chunk):
            lo, hi = max(0, start - context), min(count, start + chunk + context)
            piece = padded[lo * HOP : (hi - 1) * HOP + RECEPTIVE_FIELD]
            rows = self._encode(piece)
            parts.append(rows[start - lo : start - lo + min(chunk, count - start)])
        return np.concatenate(parts).astype(np.float32)

    def _normalize_flag(self) -> bool:
        self.load()
        return self._normalize


class HuBERT(PretrainedSpeechFeatures):
    """HuBERT (ER-NeRF's and GeneFace's ``facebook/hubert-large-ls960-ft``): last hidden state, 1024 wide."""

    file_name = "aud_hu.npy"
    default_model = HUBERT.repo_id
    model_class = "HubertModel"
    ctc_class = "HubertForCTC"


class Wav2Vec2(PretrainedSpeechFeatures):
    """wav2vec2; with ``output=logits`` and RAD-NeRF's ``cpierse/wav2vec2-large-xlsr-53-esperanto`` the
    44 character logits RAD-NeRF saves as ``aud_eo.npy``."""

    file_name = "aud_eo.npy"
    default_model = WAV2VEC2.repo_id
    model_class = "Wav2Vec2Model"
    ctc_class = "Wav2Vec2ForCTC"

    def __init__(self, model: str | None = None, output: str = "logits", **kwargs: Any) -> None:
        super().__init__(model, output=output, **kwargs)
