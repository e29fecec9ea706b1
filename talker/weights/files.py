"""Every pretrained file talker uses: where it comes from, where it is cached, how it is verified.

Files download on first use into the cache their own library uses, as torchvision, lpips and
pytorch-fid do: torch hub's ``checkpoints`` folder for the LPIPS, FID and SyncNet networks,
talker's models folder (``$TALKER_MODELS_DIR``, else ``models/``) for MediaPipe's bundle.
HuBERT and wav2vec2 are Hugging Face hub models: transformers itself downloads them into the
Hugging Face cache; talker only decides whether it may.

Offline (``TALKER_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``) nothing is attempted, and a host that could
not be reached is not tried again by the same process: a missing file raises
:class:`WeightsUnavailable`, one line naming the file, its URL and the fetch command.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from talker.errors import TalkerError
from talker.weights.download import DownloadError, NoNetwork, check_content, download, sha256_of

OFFLINE_VARIABLES = ("TALKER_OFFLINE", "HF_HUB_OFFLINE")
MODELS_DIR_VARIABLE = "TALKER_MODELS_DIR"
_unreachable: dict[str, str] = {}  # host -> why this process could not reach it


class WeightsUnavailable(TalkerError, RuntimeError):
    """A pretrained file is missing and cannot be downloaded now; the message says which and how."""


def _true(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}  # huggingface_hub's reading


def offline_reason(url: str | None = None) -> str | None:
    """Why nothing may be downloaded now (an environment variable, or ``url``'s host was unreachable
    earlier in this process), or None."""
    for name in OFFLINE_VARIABLES:
        if _true(os.environ.get(name)):
            return f"{name}={os.environ[name]}"
    return _unreachable.get(_host(url)) if url else None


def offline() -> bool:
    return offline_reason() is not None


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc


def forget_unreachable() -> None:
    """Try every host again (a host that could not be reached is otherwise not retried by this process)."""
    _unreachable.clear()


def models_dir() -> Path:
    """talker's models folder: ``$TALKER_MODELS_DIR``, else ``models/`` under the working directory."""
    return Path(os.environ.get(MODELS_DIR_VARIABLE) or "models")


def torch_hub_checkpoints() -> Path:
    """``$TORCH_HOME/hub/checkpoints`` (~/.cache/torch by default), where torch.hub caches weights."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def hf_hub_cache() -> Path:
    """Where transformers caches hub models: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    return Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface") / "hub"


CACHES = {"torch_hub": torch_hub_checkpoints, "models": models_dir}


@dataclass
class WeightsFile:
    """One downloadable file.

    Attributes:
        name: its name for ``python -m talker.weights fetch <name>``.
        what: what it is, for messages.
        url: where its publisher serves it.
        cache: ``torch_hub`` or ``models`` (see :data:`CACHES`).
        sha256: the published digest, or torchvision's 8-digit prefix of it; None if none is published.
        size: the published size in bytes, if known.
        used_by: what in talker needs it.
    """

    name: str
    what: str
    url: str
    cache: str
    sha256: str | None = None
    size: int | None = None
    used_by: str = ""

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    def path(self) -> Path:
        """Where the file is cached (and looked for)."""
        return CACHES[self.cache]() / self.file_name

    def fetch_hint(self) -> str:
        return f"download {self.url} there, or run `python -m talker.weights fetch {self.name}` on a machine with internet"

    def ensure(self, dest: str | os.PathLike | None = None) -> Path:
        """The cached file, downloaded and verified first if it is missing (at ``dest``, default :meth:`path`).

        A file already there is used as is, without touching the network.
        """
        dest = Path(dest).expanduser() if dest else self.path()
        if dest.is_file():
            return dest
        reason = offline_reason(self.url)
        if reason:
            raise WeightsUnavailable(f"{self.what} weights missing: {dest} (offline: {reason}; {self.fetch_hint()})")
        try:
            return download(self.url, dest, sha256=self.sha256, size=self.size)
        except NoNetwork as exc:
            _unreachable[_host(self.url)] = f"{_host(self.url)} was unreachable"
            raise WeightsUnavailable(f"{self.what} weights missing: {exc}") from exc
        except DownloadError as exc:
            raise WeightsUnavailable(f"{self.what} weights missing: {exc}") from exc

    def resolve(self, configured: str | os.PathLike | None = None) -> Path:
        """The file to load: ``configured`` if given (it must exist: a user's file is never
        downloaded over), else the cached file (see :meth:`ensure`)."""
        if configured:
            path = Path(configured).expanduser()
            if path.is_file():
                return path
            raise WeightsUnavailable(f"{self.what} weights not found at the configured path {path} (the file is {self.url})")
        return self.ensure()

    def verify(self, path: Path | None = None) -> str | None:
        """Why the file at ``path`` (default: the cache) is not the published one; None if it is
        (or if nothing is published to compare with)."""
        path = path or self.path()
        return check_content(sha256_of(path), path.stat().st_size, self.sha256, self.size)


@dataclass
class HubModel:
    """A Hugging Face hub model that transformers downloads into its own cache."""

    name: str
    what: str
    repo_id: str
    used_by: str = ""

    def path(self) -> Path:
        return hf_hub_cache() / f"models--{self.repo_id.replace('/', '--')}"

    def present(self) -> bool:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(self.repo_id, "config.json", cache_dir=hf_hub_cache()), str)

    def fetch_hint(self) -> str:
        return f"run `python -m talker.weights fetch {self.name}` (or `huggingface-cli download {self.repo_id}`) on a machine with internet"

    def ensure(self) -> Path:
        """Download config, weights and feature-extractor settings through transformers."""
        reason = offline_reason()
        if reason and not self.present():
            raise WeightsUnavailable(f"{self.what} '{self.repo_id}' is not in the Hugging Face cache {hf_hub_cache()} (offline: {reason}; {self.fetch_hint()})")
        import transformers

        try:
            transformers.AutoModel.from_pretrained(self.repo_id, local_files_only=bool(reason))
        except OSError as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise WeightsUnavailable(f"{self.what} '{self.repo_id}' could not be fetched into {hf_hub_cache()}: {first}") from exc
        try:  # not every model has a preprocessor_config.json; the extractor's defaults then apply
            transformers.AutoFeatureExtractor.from_pretrained(self.repo_id, local_files_only=bool(reason))
        except (OSError, ValueError):
            pass
        return self.path()


# torchvision's AlexNet (torchvision/models/alexnet.py); lpips builds its trunk from it. The file
# name's 7be5be79 is the start of its sha256, which torchvision checks (check_hash=True).
LPIPS_ALEXNET = WeightsFile(
    "lpips_alexnet", "LPIPS AlexNet", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth", "torch_hub",
    sha256="7be5be79", used_by="metric lpips; the lips stage's LPIPS loss",
)
# pytorch-fid's FID_WEIGHTS_URL (pytorch_fid/inception.py); sha256 and size as published for that
# release file (its name carries the digest's first 8 digits).
FID_INCEPTION = WeightsFile(
    "fid_inception", "FID Inception",
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
    "torch_hub", sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2", size=95_628_359,
    used_by="metric fid",
)
# syncnet_python's download_model.sh. No checksum is published: the transfer is checked against its
# announced length, and the content by loading it strictly into SyncNet's layers.
SYNCNET_V2 = WeightsFile(
    "syncnet_v2", "SyncNet", "http://www.robots.ox.ac.uk/~vgg/software/lipsync/data/syncnet_v2.model", "torch_hub",
    used_by="metric sync (LSE-C, LSE-D)",
)
# MediaPipe's model zoo, the pinned version 1 of the float16 bundle ("latest" may change); sha256
# and size as measured on the bundle in shared/models (redistributed by GeneFace++), which other
# projects pin for this URL too.
FACE_LANDMARKER = WeightsFile(
    "face_landmarker", "MediaPipe Face Landmarker",
    "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/face_landmarker.task",
    "models", sha256="64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff", size=3_758_596,
    used_by="talker.preprocess; metrics lmd and sync (frames without landmarks)",
)
HUBERT = HubModel(
    "hubert", "HuBERT", "facebook/hubert-large-ls960-ft", used_by="audio features --features hubert (ER-NeRF, GeneFace)",
)
WAV2VEC2 = HubModel(
    "wav2vec2", "wav2vec2", "cpierse/wav2vec2-large-xlsr-53-esperanto", used_by="audio features --features wav2vec2 (RAD-NeRF)",
)

REGISTRY: dict[str, WeightsFile | HubModel] = {
    w.name: w for w in (LPIPS_ALEXNET, FID_INCEPTION, SYNCNET_V2, FACE_LANDMARKER, HUBERT, WAV2VEC2)
}
