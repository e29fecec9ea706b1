"""``python -m talker.weights list | fetch``: what is present and where; prefetching."""

from __future__ import annotations

from pathlib import Path

import pytest

from talker.weights import REGISTRY, files
from talker.weights.__main__ import main

from .conftest import WeightsServer
from .test_download import made_weights, served


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def test_fetch_then_list(server: WeightsServer, caches: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str]) -> None:
    served(monkeypatch, files.SYNCNET_V2, server, made_weights())
    served(monkeypatch, files.FACE_LANDMARKER, server, made_weights(seed=3))
    code, out, _ = run(["fetch", "syncnet_v2", "face_landmarker"], capsys)
    assert code == 0 and f"syncnet_v2: {caches['torch_hub'] / 'syncnet_v2.model'}" in out
    assert (caches["models"] / "face_landmarker.task").read_bytes() == made_weights(seed=3)

    code, out, _ = run(["list", "--verify"], capsys)
    assert code == 0
    blocks = {line.split()[0]: line for line in out.splitlines() if line and not line.startswith(" ")}
    assert set(REGISTRY) <= set(blocks)
    assert "present (0.3 MB), nothing published to verify" in blocks["syncnet_v2"]
    assert "present (0.3 MB), verified" in blocks["face_landmarker"]
    assert "missing" in blocks["lpips_alexnet"] and str(caches["torch_hub"] / "alexnet-owt-7be5be79.pth") in out
    assert "missing: lpips_alexnet, fid_inception" in out

    (caches["models"] / "face_landmarker.task").write_bytes(b"edited")
    code, out, _ = run(["list", "--verify"], capsys)
    assert code == 1 and "CORRUPT (size 6 bytes" in out


def test_fetch_reports_each_failure_and_exits_nonzero(server: WeightsServer, caches: dict[str, Path],
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    served(monkeypatch, files.SYNCNET_V2, server, made_weights())
    served(monkeypatch, files.FID_INCEPTION, server, made_weights(), behaviour="truncated")
    code, out, err = run(["fetch", "fid_inception", "syncnet_v2"], capsys)
    assert code == 1 and "syncnet_v2:" in out
    assert "talker.weights: fid_inception: FID Inception weights missing: download of" in err and "truncated" in err
    code, _, err = run(["fetch", "alexnet"], capsys)
    assert code == 2 and "unknown alexnet; choose from all, lpips_alexnet" in err
