"""``python -m talker.study serve``: the rating page and its JSON API (Flask, served by waitress).

Rater side (a cookie holds the anonymous rater token; nothing names a method)::

    GET  /                   the rating page (talker/study/web/)
    POST /api/start          register an anonymous rater (or return the one in the cookie)
    GET  /api/next           the first clip of this rater's order not fully rated, with the scores
                             already given to it; {"done": true} at the end
    POST /api/answer         {"item": <blind id>, "criterion": <key>, "score": 1..5}; a repeat replaces
    GET  /media/<id>.mp4     a clip of this study (range requests for seeking)

Admin side (``Authorization: Bearer <token>`` or ``?token=``; the token is printed at ``serve``)::

    GET  /admin/results      Table 3 so far (HTML), exclusions and agreement
    GET  /admin/export.csv   every raw rating with its method and clip

Anything else a rater sends gets a 4xx with a one-line JSON reason (``{"error": ...}``), and nothing
is written.
"""

from __future__ import annotations

import hmac
import json
from importlib import resources

from flask import Flask, Response, jsonify, make_response, request, send_file
from werkzeug.exceptions import HTTPException

from talker.study.design import BLIND_ID, SCORES, Study
from talker.study.store import RaterInfo, Store

COOKIE = "talker_rater"
WEB = resources.files("talker.study") / "web"
MAX_REQUEST_BYTES = 4096


class Refused(Exception):
    """A request the study cannot accept: answered with ``status`` and a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def create_app(study: Study, store: Store, admin_token: str) -> Flask:
    """The web app of ``study``, storing in ``store``; ``admin_token`` unlocks /admin/."""
    app = Flask("talker.study", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    orders: dict[int, list[str]] = {}

    def order_of(rater: RaterInfo) -> list[str]:
        if rater.number not in orders:
            orders[rater.number] = study.order(rater.number)
        return orders[rater.number]

    def current_rater() -> RaterInfo:
        rater = store.rater(request.cookies.get(COOKIE))
        if rater is None:
            raise Refused(401, "no rater session: open the study page and press Start first")
        return rater

    def require_admin() -> None:
        given = request.args.get("token") or request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not given:
            raise Refused(401, "admin token required (printed by `python -m talker.study serve`)")
        if not hmac.compare_digest(given.encode(), admin_token.encode()):
            raise Refused(403, "wrong admin token")

    @app.errorhandler(Refused)
    def refused(exc: Refused) -> Response:
        return make_response(jsonify(error=exc.reason), exc.status)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        reason = {413: f"request too large (at most {MAX_REQUEST_BYTES} bytes)"}.get(exc.code, exc.description.split(".")[0])
        return make_response(jsonify(error=reason), exc.code)

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        if request.path.startswith(("/api/", "/admin/")):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/")
    def page() -> Response:
        html = (WEB / "index.html").read_text().replace("{{title}}", _escape(study.title))
        return Response(html, mimetype="text/html")

    @app.get("/static/<name>")
    def static_file(name: str) -> Response:
        types = {"study.js": "text/javascript", "study.css": "text/css"}
        if name not in types:
            raise Refused(404, f"no such file: {name}")
        return Response((WEB / name).read_text(), mimetype=types[name])

    @app.post("/api/start")
    def start() -> Response:
        rater = store.rater(request.cookies.get(COOKIE)) or store.new_rater()
        response = jsonify(rater=_code(rater), total=len(order_of(rater)))
        response.set_cookie(COOKIE, rater.token, max_age=90 * 24 * 3600, httponly=True, samesite="Strict", secure=request.is_secure)
        return response

    @app.get("/api/next")
    def next_item() -> Response:
        rater = current_rater()
        order, answers = order_of(rater), store.answers(rater)
        criteria = [{"key": c.key, "label": c.label, "question": c.question} for c in study.criteria]
        for position, blind in enumerate(order):
            scores = {c: answers[(blind, c)] for c in study.criterion_keys if (blind, c) in answers}
            if len(scores) < len(study.criteria):
                return jsonify(done=False, position=position + 1, total=len(order), item=blind, video=f"/media/{blind}.mp4",
                               criteria=criteria, scores=scores, scale=list(SCORES))
        return jsonify(done=True, total=len(order))

    @app.post("/api/answer")
    def answer() -> Response:
        rater = current_rater()
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise Refused(400, "send a JSON object {item, criterion, score}")
        extra = sorted(set(body) - {"item", "criterion", "score"})
        if extra:
            raise Refused(400, f"unexpected field {extra[0]!r}")
        item, criterion, score = body.get("item"), body.get("criterion"), body.get("score")
        if not isinstance(item, str) or item not in order_of(rater):
            raise Refused(404, f"no clip {str(item)[:40]!r} in this study for this rater")
        if criterion not in study.criterion_keys:
            raise Refused(400, f"unknown criterion {str(criterion)[:40]!r}; this study rates {', '.join(study.criterion_keys)}")
        if isinstance(score, bool) or not isinstance(score, int) or score not in SCORES:
            raise Refused(400, f"score must be an integer from {min(SCORES)} to {max(SCORES)}, not {json.dumps(score)[:20]}")
        store.save(rater, item, criterion, score)
        answers = store.answers(rater)
        complete = sum(all((b, c) in answers for c in study.criterion_keys) for b in order_of(rater))
        return jsonify(saved=True, complete=complete, total=len(order_of(rater)))

    @app.get("/media/<name>")
    def media(name: str) -> Response:
        current_rater()
        blind = name.removesuffix(".mp4")
        item = study.item(blind) if BLIND_ID.fullmatch(blind) and name.endswith(".mp4") else None
        if item is None:
            raise Refused(404, "no such clip")
        return send_file(study.media_path(item), mimetype="video/mp4", conditional=True, etag=False, last_modified=None)

    @app.get("/admin/results")
    def results_page() -> Response:
        require_admin()
        from talker.study.results import analyse, html_report

        return Response(html_report(analyse(study, store.ratings(), store.rater_numbers())), mimetype="text/html")

    @app.get("/admin/export.csv")
    def export() -> Response:
        require_admin()
        from talker.study.results import analyse

        csv = analyse(study, store.ratings(), store.rater_numbers()).ratings.to_csv(index=False)
        response = Response(csv, mimetype="text/csv")
        response.headers["Content-Disposition"] = "attachment; filename=ratings.csv"
        return response

    return app


def _code(rater: RaterInfo) -> str:
    """What the page shows a rater about themself: their arrival number, nothing secret."""
    return f"R{rater.number + 1:03d}"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def serve(study: Study, store: Store, admin_token: str, host: str = "127.0.0.1", port: int = 8000, threads: int = 4):
    """A waitress server for the app (not started); ``server.effective_port`` is the bound port."""
    from waitress import create_server

    return create_server(create_app(study, store, admin_token), host=host, port=port, threads=threads, ident="talker.study")


__all__ = ["COOKIE", "Refused", "create_app", "serve"]
