"""One file over HTTP(S) into a cache: to a temporary name beside it, verified, then moved into place.

The cache therefore never holds a partial or corrupt file under the real name: a transfer that is
cut short, a 404, a dropped connection or a checksum mismatch leaves nothing behind and raises
:class:`DownloadError`, one line naming the URL and the destination.

``torch.hub.download_url_to_file`` does the temporary-name-and-move part too, but it does not
notice a transfer that ends early when no hash is given (SyncNet's publisher gives none), and it
cannot check a full digest or a size; hence this small copy of the idea on ``urllib``.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from talker.errors import TalkerError

CHUNK = 1 << 20
TIMEOUT_S = 30.0  # per connect and per read; a stalled server fails instead of hanging a run


class DownloadError(TalkerError, RuntimeError):
    """A download failed; nothing was written under the destination's name."""


class NoNetwork(DownloadError):
    """The host could not be reached at all (no route, no DNS, refused, timed out)."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def check_content(digest: str, size: int, sha256: str | None, expected_size: int | None) -> str | None:
    """Why a file of this digest and size is not the published one (None when it is).

    ``sha256`` is a full hex digest or a prefix of one (torchvision's convention: the first 8 hex
    digits in the file name, ``alexnet-owt-7be5be79.pth``).
    """
    if expected_size is not None and size != expected_size:
        return f"size {size} bytes, the published file has {expected_size}"
    if sha256 is not None and not digest.startswith(sha256.lower()):
        return f"sha256 {digest[:16]}... does not match the published {sha256[:16]}"
    return None


def download(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    size: int | None = None,
    progress: bool | None = None,
    timeout: float = TIMEOUT_S,
) -> Path:
    """Fetch ``url`` to ``dest``, verified against ``sha256`` / ``size`` and the announced length.

    Args:
        progress: a tqdm bar; None shows it only when stderr is a terminal (a log gets a start and an
            end line instead).
    Raises :class:`NoNetwork` when the host cannot be reached, :class:`DownloadError` otherwise.
    """
    dest = Path(dest)

    def fail(reason: str, kind: type[DownloadError] = DownloadError) -> DownloadError:
        return kind(f"download of {url} failed ({reason}); nothing written to {dest}")

    print(f"[talker] downloading {url} -> {dest}", file=sys.stderr, flush=True)
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": "talker"}), timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise fail(f"HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise fail(f"cannot reach the host: {getattr(exc, 'reason', exc)}", NoNetwork) from exc
    with response:
        dest.parent.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part", delete=False)  # noqa: SIM115
        part = Path(handle.name)
        try:
            with handle:
                received, digest, announced = _transfer(response, handle, progress, fail)
                handle.flush()
                os.fsync(handle.fileno())
            if announced is not None and received != announced:
                raise fail(f"truncated: {received} of {announced} bytes")
            problem = check_content(digest, received, sha256, size)
            if problem:
                raise fail(problem)
            os.replace(part, dest)
        finally:
            part.unlink(missing_ok=True)
    print(f"[talker] {dest.name}: {received / 1e6:.1f} MB, verified", file=sys.stderr, flush=True)
    return dest


def _transfer(response, handle, progress, fail) -> tuple[int, str, int | None]:
    """Stream the response body into ``handle``: (bytes received, sha256, Content-Length or None)."""
    digest = hashlib.sha256()
    received = 0
    length = response.headers.get("Content-Length")
    announced = int(length) if length and length.isdigit() else None
    bar = _bar(announced, response.url.rsplit("/", 1)[-1], progress)
    try:
        while True:
            try:
                block = response.read(CHUNK)
            except http.client.IncompleteRead as exc:  # the connection closed before the announced length
                block = exc.partial
            except (OSError, http.client.HTTPException) as exc:
                raise fail(f"connection lost after {received} bytes: {exc or type(exc).__name__}") from exc
            if not block:
                break
            handle.write(block)
            digest.update(block)
            received += len(block)
            if bar is not None:
                bar.update(len(block))
    finally:
        if bar is not None:
            bar.close()
    return received, digest.hexdigest(), announced


def _bar(total: int | None, name: str, progress: bool | None):
    show = sys.stderr.isatty() if progress is None else progress
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name, file=sys.stderr)
