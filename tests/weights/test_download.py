"""The real download code against a local server: each registered file downloads, verifies and
caches on first use and never touches the network again; every failure leaves nothing behind and
says so in one line naming the URL and the cache path; offline, nothing is attempted."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from talker.weights import REGISTRY, WeightsFile, WeightsUnavailable, files

from .conftest import WeightsServer

FILES = [entry for entry in REGISTRY.values() if isinstance(entry, WeightsFile)]


def made_weights(size: int = 300_000, seed: int = 0) -> bytes:
    return bytes((i * 7919 + seed) % 251 for i in range(size))


def served(monkeypatch: pytest.MonkeyPatch, entry: WeightsFile, server: WeightsServer, content: bytes,
           behaviour: str = "good", published: bytes | None = None) -> None:
    """Point ``entry`` at the server, publishing the digest (in the entry's own style) and size of
    ``published`` (default: what is served)."""
    published = content if published is None else published
    digest = hashlib.sha256(published).hexdigest()
    monkeypatch.setattr(entry, "url", server.serve(entry.file_name, content, behaviour))
    if entry.sha256 is not None:
        monkeypatch.setattr(entry, "sha256", digest[: len(entry.sha256)])  # a prefix stays a prefix
    if entry.size is not None:
        monkeypatch.setattr(entry, "size", len(published))


def everything_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.mark.parametrize("entry", FILES, ids=lambda e: e.name)
def test_first_use_downloads_verifies_and_caches_then_never_asks_again(
    entry: WeightsFile, server: WeightsServer, caches: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    content = made_weights()
    served(monkeypatch, entry, server, content)
    path = entry.ensure()
    assert path == caches[entry.cache] / entry.file_name  # the library's own cache, under the published name
    assert path.read_bytes() == content and everything_in(caches[entry.cache]) == [entry.file_name]
    assert server.requests == [f"/{entry.file_name}"]
    assert f"downloading {entry.url} -> {path}" in capfd.readouterr().err  # a log says what is fetched
    assert entry.ensure() == path and entry.resolve() == path
    assert server.requests == [f"/{entry.file_name}"]  # the second use did not touch the network
    server.stop()
    assert entry.ensure() == path  # ... nor needs it


@pytest.mark.parametrize(
    ("behaviour", "published", "reason"),
    [
        ("truncated", None, r"truncated: 150000 of 300000 bytes"),
        ("good", made_weights(seed=1), r"sha256 [0-9a-f]{16}\.\.\. does not match the published"),
        ("missing", None, r"HTTP 404"),
        ("dies", None, r"(connection lost after \d+ bytes|truncated: \d+ of 300000 bytes)"),
    ],
    ids=["truncated", "wrong_checksum", "404", "server_dies_mid_file"],
)
def test_a_failed_download_leaves_nothing_and_says_one_line(
    behaviour: str, published: bytes | None, reason: str, server: WeightsServer, caches: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    entry = files.FID_INCEPTION  # published sha256 and size: every check applies
    served(monkeypatch, entry, server, made_weights(), behaviour, published)
    if behaviour == "missing":
        server.routes.clear()
    with pytest.raises(WeightsUnavailable, match=reason) as info:
        entry.ensure()
    message = str(info.value)
    assert "\n" not in message and entry.url in message and str(entry.path()) in message
    assert everything_in(caches["torch_hub"]) == []  # neither the file nor a partial one
    assert not entry.path().exists()


def test_a_file_of_another_size_is_refused(server: WeightsServer, caches: dict[str, Path],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    entry = files.FACE_LANDMARKER
    served(monkeypatch, entry, server, made_weights(), published=made_weights(size=300_001))
    monkeypatch.setattr(entry, "sha256", None)
    with pytest.raises(WeightsUnavailable, match="size 300000 bytes, the published file has 300001"):
        entry.ensure()
    assert everything_in(caches["models"]) == []


@pytest.mark.parametrize("variable", ["TALKER_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_nothing_is_attempted(variable: str, server: WeightsServer, caches: dict[str, Path],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    entry = files.SYNCNET_V2
    served(monkeypatch, entry, server, made_weights())
    monkeypatch.setenv(variable, "1")
    with pytest.raises(WeightsUnavailable) as info:
        entry.ensure()
    message = str(info.value)
    assert f"offline: {variable}=1" in message and entry.url in message and str(entry.path()) in message
    assert f"python -m talker.weights fetch {entry.name}" in message and "\n" not in message
    assert server.requests == [] and everything_in(caches["torch_hub"]) == []


def test_an_unreachable_host_is_not_tried_again(server: WeightsServer, caches: dict[str, Path],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    served(monkeypatch, files.SYNCNET_V2, server, made_weights())
    served(monkeypatch, files.FID_INCEPTION, server, made_weights())
    server.stop()  # connection refused: as a machine without network
    with pytest.raises(WeightsUnavailable, match="cannot reach the host"):
        files.SYNCNET_V2.ensure()
    with pytest.raises(WeightsUnavailable, match=r"offline: 127\.0\.0\.1:\d+ was unreachable"):
        files.FID_INCEPTION.ensure()  # same host: not retried (a firewall that drops packets costs one timeout)
    assert everything_in(caches["torch_hub"]) == []


def test_a_configured_file_is_used_or_named_never_downloaded(server: WeightsServer, caches: dict[str, Path],
                                                            monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    entry = files.LPIPS_ALEXNET
    served(monkeypatch, entry, server, made_weights())
    mine = tmp_path / "mine.pth"
    with pytest.raises(WeightsUnavailable, match=f"configured path {mine}"):
        entry.resolve(mine)
    mine.write_bytes(b"x")
    assert entry.resolve(str(mine)) == mine
    assert server.requests == []


def test_verify_reports_a_file_that_is_not_the_published_one(caches: dict[str, Path]) -> None:
    entry = files.FID_INCEPTION
    entry.path().parent.mkdir(parents=True)
    entry.path().write_bytes(b"not inception")
    assert entry.verify() == f"size 13 bytes, the published file has {entry.size}"


def test_the_registered_face_landmarker_digest_is_the_shared_bundle() -> None:
    from ..conftest import SHARED

    bundle = SHARED / "models" / "face_landmarker.task" if SHARED else None
    if bundle is None or not bundle.is_file():
        pytest.skip("shared/models/face_landmarker.task not available")
    assert files.FACE_LANDMARKER.verify(bundle) is None
    assert os.path.getsize(bundle) == files.FACE_LANDMARKER.size
