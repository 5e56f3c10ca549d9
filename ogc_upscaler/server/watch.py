"""The watch page of every ``upscale`` job, at ``/watch/<job id>/`` on the endpoint, and of each campaign
the endpoint was told about (``serve --watch CONFIG``), at ``/watch/campaigns/<name>/``.

The same page as ``ogc-upscaler watch``, reading the campaign store the job's worker writes in the
job's folder; its actions are requests to that worker's manager. The page's token is an HMAC of the
job id with a secret kept in the server's state folder, so every gunicorn worker (and a restarted
server) accepts the token any of them handed out.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from collections import OrderedDict
from pathlib import Path

from flask import Blueprint, Flask, Response, abort, request

from ogc_upscaler.watch.app import WatchApp
from ogc_upscaler.watch.view import StoreView

JOB_ID = re.compile(r"^[0-9a-f-]{36}$")
#: Pages whose tiles and answers a server process keeps, the latest read: the others are read again.
PAGES_KEPT = 16
#: The campaign store an ``upscale`` job keeps in its folder (``UpscaleProcessor.campaign``).
STORE = "campaign.sqlite"


def watch_link(folder: Path, base_url: str, identifier: str) -> dict[str, str] | None:
    """The link to a job's watch page, for jobs that run a campaign (None for the others)."""
    if not (folder / STORE).is_file():
        return None
    return {"href": f"{base_url}/watch/{identifier}/", "rel": "monitor", "type": "text/html", "title": "Watch it"}


def install(app: Flask, state: Path) -> None:
    """Serve the watch pages of the jobs in ``state``/jobs and of the campaigns in ``state``/watched.json."""
    pages: OrderedDict[str, WatchApp] = OrderedDict()  # the pages read lately: each holds its tiles
    secret = _secret(state)
    watched_file = state / "watched.json"
    watched = json.loads(watched_file.read_text()) if watched_file.is_file() else {}
    routes = Blueprint("ogc_upscaler_watch", __name__)

    def page(key: str, store: Path) -> WatchApp:
        if key not in pages:
            if not store.is_file():
                abort(404)
            token = hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()
            pages[key] = WatchApp(StoreView(store), token)
            while len(pages) > PAGES_KEPT:
                pages.popitem(last=False)
        pages.move_to_end(key)
        return pages[key]

    @routes.route("/watch/<job_id>/", defaults={"path": ""}, methods=["GET", "POST"])
    @routes.route("/watch/<job_id>/<path:path>", methods=["GET", "POST"])
    def job_page(job_id: str, path: str) -> Response:
        if not JOB_ID.match(job_id):
            abort(404)
        return _answer(page(job_id, state / "jobs" / job_id / STORE), path)

    @routes.route("/watch/campaigns/<name>/", defaults={"path": ""}, methods=["GET", "POST"])
    @routes.route("/watch/campaigns/<name>/<path:path>", methods=["GET", "POST"])
    def campaign_page(name: str, path: str) -> Response:
        if name not in watched:
            abort(404)
        return _answer(page(f"campaign:{name}", Path(watched[name])), path)

    app.register_blueprint(routes)


def _answer(page: WatchApp, path: str) -> Response:
    headers = {k.lower(): v for k, v in request.headers.items()}
    answer = page.respond(request.method, path, request.args.to_dict(), headers, request.get_data())
    response = Response(answer.body, status=answer.status, content_type=answer.content_type)
    for name, value in answer.headers:
        response.headers[name] = value
    response.headers["Cache-Control"] = "no-store"
    return response


def _secret(state: Path) -> bytes:
    """The server's secret for page tokens, made once: written whole, then linked into place, so a
    worker racing another reads the winner's secret, never a half-written file."""
    path = state / "watch.secret"
    if not path.exists():
        tmp = state / f".watch.secret.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_bytes()
