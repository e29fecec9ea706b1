"""``python -m talker.study serve`` as a process: loopback by default, and its ratings survive a SIGKILL."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from talker.study.__main__ import main
from talker.study.design import load_study
from tests.study.serving import Browser, Server


def test_serve_binds_loopback_and_prints_the_admin_token(study_dir: Path, tmp_path: Path) -> None:
    with Server(study_dir, f"sqlite:///{tmp_path / 'r.sqlite'}") as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert len(server.token) >= 20
        status, page = Browser(server.url).call("GET", f"/admin/results?token={server.token}")
        assert status == 200 and "Table 3. User study" in page
        assert Browser(server.url).call("GET", "/admin/results?token=guess")[0] == 403


def test_ratings_survive_the_server_being_killed_mid_answer(study_dir: Path, tmp_path: Path) -> None:
    study = load_study(study_dir)
    db = tmp_path / "ratings.sqlite"
    acknowledged: list[tuple[str, str, int]] = []
    with Server(study_dir, f"sqlite:///{db}") as server:
        browser = Browser(server.url)
        browser.call("POST", "/api/start")
        order = study.order(0)
        questions = [(item, criterion) for item in order for criterion in study.criterion_keys]
        killed = threading.Event()

        def answer_until_killed() -> None:
            for round_ in range(50):  # bounded: at most 50 passes over the study
                for item, criterion in questions:
                    score = 1 + (round_ + len(acknowledged)) % 5
                    try:
                        status, _ = browser.call("POST", "/api/answer", {"item": item, "criterion": criterion, "score": score})
                    except OSError:
                        return  # the server is gone
                    if status == 200:
                        acknowledged.append((item, criterion, score))
                    if killed.is_set():
                        return

        writer = threading.Thread(target=answer_until_killed)
        writer.start()
        while len(acknowledged) < len(questions) + 5 and writer.is_alive():
            threading.Event().wait(0.01)
        server.kill()  # SIGKILL while answers are streaming in
        killed.set()
        writer.join(20)
    connection = sqlite3.connect(db)
    assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    stored = {(item, criterion): score for item, criterion, score in connection.execute("SELECT item, criterion, score FROM answers")}
    connection.close()
    last = {}
    for item, criterion, score in acknowledged:
        last[(item, criterion)] = score
    # Every acknowledged answer is there; one sent as the server died may or may not be.
    assert len(stored) == len(questions)
    differing = [key for key, score in last.items() if stored[key] != score]
    assert len(differing) <= 1
    with Server(study_dir, f"sqlite:///{db}") as server:  # restarted on the same database
        browser.url = server.url  # the same browser (its cookie) on the new port
        status, body = browser.call("GET", "/api/next")
        assert status == 200 and body["done"] is True


def test_serve_refuses_a_bad_port_and_a_missing_study(study_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for argv, reason in (
        (["serve", f"study={study_dir}", "port=99999"], "port=99999: not a TCP port"),
        (["serve", f"study={tmp_path}"], "study.json: missing"),
        (["serve", "study=x", "color=red"], "not understood: color=red"),
    ):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2 and reason in capsys.readouterr().err
