"""The HTTP API: raters, answers (good and bad), duplicates, resume, admin token, blindness."""

from __future__ import annotations

from pathlib import Path

import pytest

from talker.study.design import load_study
from talker.study.server import COOKIE, create_app
from talker.study.store import Store
from tests.study.conftest import SETTINGS, SYSTEMS

TOKEN = "admin-secret"


@pytest.fixture()
def app_and_store(study_dir: Path, tmp_path: Path):
    study = load_study(study_dir)
    store = Store(study, f"sqlite:///{tmp_path / 'ratings.sqlite'}")
    yield create_app(study, store, TOKEN), store, study
    store.close()


@pytest.fixture()
def app(app_and_store):
    return app_and_store[0]


def started(app):
    client = app.test_client()
    assert client.post("/api/start").status_code == 200
    return client


def test_rater_gets_an_anonymous_cookie_and_an_order(app) -> None:
    client = app.test_client()
    assert client.get("/api/next").status_code == 401
    response = client.post("/api/start")
    assert response.json == {"rater": "R001", "total": 8}
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert client.post("/api/start").json["rater"] == "R001"  # the same rater again, not a new one
    assert app.test_client().post("/api/start").json["rater"] == "R002"
    first = client.get("/api/next").json
    assert first["position"] == 1 and first["scores"] == {} and first["video"] == f"/media/{first['item']}.mp4"
    assert [c["key"] for c in first["criteria"]] == ["lip_sync", "image_quality", "video_realness"]


def test_good_answers_are_saved_and_a_repeat_replaces(app_and_store) -> None:
    app, store, _ = app_and_store
    client = started(app)
    item = client.get("/api/next").json["item"]
    assert client.post("/api/answer", json={"item": item, "criterion": "lip_sync", "score": 2}).json["saved"]
    assert client.post("/api/answer", json={"item": item, "criterion": "lip_sync", "score": 5}).status_code == 200
    ratings = store.ratings()
    assert [(r.item, r.criterion, r.score) for r in ratings] == [(item, "lip_sync", 5)]
    assert client.get("/api/next").json["scores"] == {"lip_sync": 5}


@pytest.mark.parametrize(
    "body,status,reason",
    [
        ({"criterion": "lip_sync", "score": 0}, 400, "score must be an integer from 1 to 5, not 0"),
        ({"criterion": "lip_sync", "score": 6}, 400, "not 6"),
        ({"criterion": "lip_sync", "score": 3.5}, 400, "not 3.5"),
        ({"criterion": "lip_sync", "score": "4"}, 400, 'not "4"'),
        ({"criterion": "lip_sync", "score": True}, 400, "not true"),
        ({"criterion": "lip_sync"}, 400, "not null"),
        ({"criterion": "beauty", "score": 3}, 400, "unknown criterion 'beauty'"),
        ({"criterion": "lip_sync", "score": 3, "method": "r2talker"}, 400, "unexpected field 'method'"),
        ({"item": "0123456789abcdef", "criterion": "lip_sync", "score": 3}, 404, "no clip"),
        ({"item": ["x"], "criterion": "lip_sync", "score": 3}, 404, "no clip"),
    ],
)
def test_bad_answers_get_a_4xx_with_a_reason_and_write_nothing(app_and_store, body, status, reason) -> None:
    app, store, _ = app_and_store
    client = started(app)
    body = {"item": client.get("/api/next").json["item"], **body}
    response = client.post("/api/answer", json=body)
    assert response.status_code == status
    assert reason in response.json["error"] and "\n" not in response.json["error"]
    assert store.ratings() == []


def test_malformed_requests_are_refused(app_and_store) -> None:
    app, store, _ = app_and_store
    client = started(app)
    assert client.post("/api/answer", data="score=5", content_type="application/x-www-form-urlencoded").status_code == 400
    assert client.post("/api/answer", data="[1, 2]", content_type="application/json").status_code == 400
    assert client.post("/api/answer", data="x" * 10000, content_type="application/json").status_code == 413
    assert app.test_client().post("/api/answer", json={"item": "x", "criterion": "lip_sync", "score": 3}).status_code == 401
    assert store.ratings() == []


def test_rater_resumes_where_they_stopped(app_and_store) -> None:
    app, _, study = app_and_store
    client = started(app)
    order = study.order(0)
    for item in order[:3]:
        for criterion in study.criterion_keys:
            client.post("/api/answer", json={"item": item, "criterion": criterion, "score": 4})
    client.post("/api/answer", json={"item": order[3], "criterion": "lip_sync", "score": 2})
    cookie = client.get_cookie(COOKIE).value
    later = app.test_client()  # a new browser session with the same cookie
    later.set_cookie(COOKIE, cookie)
    resumed = later.get("/api/next").json
    assert resumed["position"] == 4 and resumed["item"] == order[3] and resumed["scores"] == {"lip_sync": 2}
    for item in order[3:]:
        for criterion in study.criterion_keys:
            later.post("/api/answer", json={"item": item, "criterion": criterion, "score": 3})
    assert later.get("/api/next").json == {"done": True, "total": len(order)}


def test_a_rater_cannot_rate_or_read_for_another(app_and_store) -> None:
    app, store, _ = app_and_store
    alice, bob = started(app), started(app)
    item = alice.get("/api/next").json["item"]
    alice.post("/api/answer", json={"item": item, "criterion": "lip_sync", "score": 1})
    assert bob.get("/api/next").json["scores"] == {}
    assert bob.get("/admin/export.csv").status_code == 401
    forged = app.test_client()
    forged.set_cookie(COOKIE, "guessed-token")
    assert forged.get("/api/next").status_code == 401
    assert [r.rater for r in store.ratings()] == [0]


def test_admin_endpoints_need_the_token(app) -> None:
    client = started(app)
    for url in ("/admin/results", "/admin/export.csv"):
        assert client.get(url).status_code == 401
        assert client.get(f"{url}?token=wrong").status_code == 403
        assert client.get(f"{url}?token={TOKEN}").status_code == 200
        assert client.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_nothing_a_rater_receives_names_a_method(app_and_store) -> None:
    app, _, study = app_and_store
    client = app.test_client()
    received = [client.get("/").data, client.get("/static/study.js").data, client.post("/api/start").data]
    for item in study.order(0):
        received.append(client.get("/api/next").data)
        received.append(client.get(f"/media/{item}.mp4").data)
        for criterion in study.criterion_keys:
            received.append(client.post("/api/answer", json={"item": item, "criterion": criterion, "score": 3}).data)
    received.append(client.get("/api/next").data)
    blob = b"".join(received)
    for secret in (*SYSTEMS, *SETTINGS, "ground_truth", "broken", "kind"):
        assert secret.encode() not in blob


def test_media_needs_a_rater_and_a_study_clip(app_and_store) -> None:
    app, _, study = app_and_store
    item = study.items[0].id
    assert app.test_client().get(f"/media/{item}.mp4").status_code == 401
    client = started(app)
    assert client.get(f"/media/{item}.mp4").status_code == 200
    assert client.get(f"/media/{item}.mp4", headers={"Range": "bytes=0-9"}).status_code == 206
    for name in ("0123456789abcdef.mp4", "..%2Fstudy.json", "study.json", f"{item}.txt"):
        assert client.get(f"/media/{name}").status_code == 404


def test_a_database_of_another_study_is_refused(app_and_store, grid: Path, tmp_path: Path) -> None:
    from talker.study.create import create_study
    from talker.study.design import StudyError

    _, store, _ = app_and_store
    other = create_study([grid], tmp_path / "other", seconds=0.4, broken=False)
    with pytest.raises(StudyError, match="ratings of another study"):
        Store(other, store.url)
