"""A local HTTP server on 127.0.0.1 that serves weights made by the test, well or badly.

Each served file has a behaviour: ``good``; ``truncated`` (announces the full length, sends half
and closes); ``dies`` (sends half, then the server resets the connection and shuts down, as a
server that goes away mid-file). Unknown paths get a 404. Downloads are switched on for these
tests only (the suite runs with ``TALKER_OFFLINE=1``).
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from talker.weights import files


class WeightsServer:
    def __init__(self) -> None:
        self.routes: dict[str, tuple[bytes, str]] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                server.requests.append(self.path)
                if self.path not in server.routes:
                    self.send_error(404, "Not Found")
                    return
                content, behaviour = server.routes[self.path]
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if behaviour == "good":
                    self.wfile.write(content)
                    return
                self.wfile.write(content[: len(content) // 2])
                self.wfile.flush()
                if behaviour == "dies":
                    # RST instead of an orderly close, and nobody listening any more.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    threading.Thread(target=server.stop).start()
                self.close_connection = True

            def log_message(self, *args) -> None:  # keep pytest's output clean
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.stopped = False

    def serve(self, name: str, content: bytes, behaviour: str = "good") -> str:
        """Serve ``content`` at ``/<name>``; returns its URL."""
        self.routes[f"/{name}"] = (content, behaviour)
        return self.url(name)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}/{name}"

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.httpd.shutdown()
            self.httpd.server_close()


@pytest.fixture()
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[WeightsServer]:
    """The server, with downloads switched on and no host remembered as unreachable."""
    monkeypatch.setenv("TALKER_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    files.forget_unreachable()
    running = WeightsServer()
    yield running
    running.stop()
    files.forget_unreachable()


@pytest.fixture()
def caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Empty caches: ``$TORCH_HOME`` and ``$TALKER_MODELS_DIR`` in a temporary folder."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("TALKER_MODELS_DIR", str(tmp_path / "models"))
    return {"torch_hub": tmp_path / "torch" / "hub" / "checkpoints", "models": tmp_path / "models"}
