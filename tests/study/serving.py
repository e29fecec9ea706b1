"""Run ``python -m talker.study serve`` in a subprocess and talk to it like a browser (cookies kept)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class Server:
    """``with Server(study, db) as server:``; ``server.url``, ``server.token``; ``kill()`` sends SIGKILL."""

    def __init__(self, study: Path, db: str, *extra: str) -> None:
        self.args = [sys.executable, "-m", "talker.study", "serve", f"study={study}", f"db={db}", "port=0", *extra]

    def __enter__(self) -> Server:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(self.args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("serve exited: " + "".join(self.lines))
            self.lines.append(line)
            if match := re.search(r"at (http://\S+/)", line):
                self.url = match.group(1)
            if match := re.search(r"admin token: (\S+)", line):
                self.token = match.group(1)
                return self
        raise RuntimeError("serve did not start: " + "".join(self.lines))

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc.stdout.close()


class Browser:
    """A cookie-keeping JSON client: ``call("POST", "/api/answer", {...}) -> (status, body)``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.cookies = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict | str]:
        """The status and the JSON body (the text for any other content)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url.rstrip("/") + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"} if data else {})
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, _decode(response)
        except urllib.error.HTTPError as exc:
            return exc.code, _decode(exc)


def _decode(response) -> dict | str:
    text = response.read().decode()
    return json.loads(text) if response.headers.get_content_type() == "application/json" else text
