"""The watch page's HTTP answers, as one WSGI application per campaign store.

``GET /`` is the page; ``static/…`` its script, style and basemap (built by ``scripts/web.sh``);
``api/…`` what the page reads; ``POST api/requests`` leaves a request for the manager
(:mod:`ogc_upscaler.control`), never a write to the store. Requests that change something carry
the page's token in an ``X-Watch-Token`` header: another site's page cannot read the token, nor
send that header without the browser asking this server first, which it never allows.

All paths are relative, so the same application answers at ``/`` (``ogc-upscaler watch``) and
under ``/watch/<job id>/`` on the endpoint.
"""

from __future__ import annotations

import hmac
import html
import json
import mimetypes
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from ogc_upscaler.control import Request
from ogc_upscaler.errors import InvalidInput, UpscalerError
from ogc_upscaler.watch.view import StoreView

STATIC = Path(str(resources.files("ogc_upscaler.watch") / "static"))
#: What ``scripts/web.sh`` builds into ``static/build``: the page cannot run without them.
BUILT = ("watch.js", "world.json")


class PageNotBuilt(UpscalerError):
    """The watch page's script or basemap has not been built."""


def check_built() -> None:
    """Refuse to serve a page whose script was never built."""
    missing = [name for name in BUILT if not (STATIC / "build" / name).is_file()]
    if missing:
        raise PageNotBuilt(
            f"the watch page is not built: {', '.join(missing)} missing in {STATIC / 'build'}",
            hint="run `bash scripts/web.sh` from the project's folder (it needs Node.js and npm)",
        )


@dataclass(frozen=True)
class Response:
    """An answer: status, content type, body, and any other headers."""

    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def json(cls, data: Any, status: int = 200) -> Response:
        return cls(status, "application/json", json.dumps(data, default=_plain).encode())

    @classmethod
    def error(cls, status: int, message: str, hint: str | None = None) -> Response:
        return cls.json({"error": message, "hint": hint}, status)


class WatchApp:
    """Answers the watch page of the store ``view`` reads; ``token`` guards the requests that change something."""

    def __init__(self, view: StoreView, token: str, hosts: frozenset[str] | None = None) -> None:
        self.view = view
        self.token = token
        #: The ``Host`` headers answered (None: any). A page on loopback answers only its own names, so a
        #: site whose name a DNS trick points at 127.0.0.1 cannot read the page, nor its token.
        self.hosts = hosts
        self._get: dict[str, Callable[[dict[str, str]], Response]] = {
            "": self._page,
            "index.html": self._page,
            "favicon.ico": lambda _: Response(204, "image/x-icon", b""),
            "api/summary": self._summary,
            "api/aoi": lambda _: Response.json(self.view.aoi()),
            "api/tiles": lambda _: Response(200, "application/octet-stream", self.view.geometry()),
            "api/states": lambda q: Response(200, "application/octet-stream", self.view.states(q.get("window"))),
            "api/tile": self._tile,
            "api/locate": self._locate,
            "api/failures": lambda _: Response.json([asdict(g) for g in self.view.failures()]),
            "api/log": self._log,
            "api/requests": lambda _: Response.json([_shown(s) for s in self.view.requests.shown()]),
        }

    def respond(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> Response:
        """The answer to one request; ``path`` is relative to the application's root."""
        path = path.strip("/")
        if self.hosts is not None and headers.get("host", "").lower() not in self.hosts:
            return Response.error(403, f"this page answers as {' or '.join(sorted(self.hosts))} only")
        try:
            if method == "POST" and path == "api/requests":
                return self._ask(headers, body)
            if method not in {"GET", "HEAD"}:
                return Response.error(405, f"{method} is not answered here")
            if path.startswith("static/"):
                return self._static(path.removeprefix("static/"))
            answer = self._get.get(path)
            if answer is None:
                return Response.error(404, f"nothing at {path!r}")
            return answer(query)
        except InvalidInput as err:
            return Response.error(400, err.message, err.hint)
        except UpscalerError as err:
            return Response.error(503, err.message, err.hint)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """The WSGI entry point."""
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        response = self.respond(environ["REQUEST_METHOD"], environ.get("PATH_INFO", "/"), query, headers, body)
        start_response(
            f"{response.status} {_REASONS.get(response.status, 'Status')}",
            [
                ("Content-Type", response.content_type),
                ("Content-Length", str(len(response.body))),
                ("Cache-Control", "no-store"),
                *response.headers,
            ],
        )
        return [b"" if environ["REQUEST_METHOD"] == "HEAD" else response.body]

    # -- answers ---------------------------------------------------------------------------------

    def _page(self, _: dict[str, str]) -> Response:
        check_built()
        page = (STATIC / "index.html").read_text().replace("{{token}}", html.escape(self.token, quote=True))
        return Response(200, "text/html; charset=utf-8", page.encode())

    def _static(self, name: str) -> Response:
        folder = STATIC
        if name.startswith("build/"):
            folder, name = STATIC / "build", name.removeprefix("build/")
        if "/" in name or name.startswith(".") or not (folder / name).is_file():
            return Response.error(404, f"no file static/{name}")
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return Response(200, kind, (folder / name).read_bytes())

    def _summary(self, _: dict[str, str]) -> Response:
        summary = self.view.summary()
        data = asdict(summary)
        data["attachment"] = {**summary.attachment.as_dict(), "line": summary.attachment.line(_active(summary))}
        return Response.json(data)

    def _tile(self, query: dict[str, str]) -> Response:
        found = self.view.tile(_int(query, "i"))
        if found is None:
            return Response.error(404, f"no tile number {query.get('i')}")
        tile_id, props, jobs = found
        return Response.json({"tile_id": tile_id, "props": props, "jobs": [asdict(j) for j in jobs]})

    def _locate(self, query: dict[str, str]) -> Response:
        index = self.view.locate(query.get("tile", ""))
        if index is None:
            return Response.error(404, f"no tile {query.get('tile')!r} in this campaign")
        return Response.json({"index": index})

    def _log(self, query: dict[str, str]) -> Response:
        found = self.view.log(query.get("job", ""))
        if found is None:
            return Response.error(404, f"no job {query.get('job')!r} in this campaign")
        path, text = found
        return Response(200, "text/plain; charset=utf-8", text.encode(), (("X-Log-Path", path),))

    def _ask(self, headers: dict[str, str], body: bytes) -> Response:
        if not hmac.compare_digest(headers.get("x-watch-token", ""), self.token):
            return Response.error(403, "this request does not come from the watch page", "reload the page")
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return Response.error(400, "the request's body is not JSON")
        if not isinstance(data, dict):
            return Response.error(400, "the request's body is not a JSON object")
        request = self.view.requests.ask(Request.new(str(data.get("action", "")), data.get("cause")))
        return Response.json({"request_id": request.request_id}, 202)


def _shown(shown: Any) -> dict[str, Any]:
    return {"request": asdict(shown.request), "answer": asdict(shown.answer) if shown.answer else None}


def _active(summary: Any) -> int:
    return summary.counts.get("submitted", 0) + summary.counts.get("running", 0)


def _int(query: dict[str, str], name: str) -> int:
    try:
        return int(query.get(name, ""))
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number, not {query.get(name)!r}") from None


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


_REASONS = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}
