"""An HTTP reverse proxy on loopback that loses answers on purpose, for exactly-once measurements.

``FaultProxy(upstream)`` forwards every request (method, path, query, headers, body) to the
upstream URL and every answer back, with the upstream's absolute URLs rewritten to the proxy's
own (in ``Location``, ``Content-Location`` and ``Link`` headers and in textual bodies such as
JSON), so a client only ever talks to the proxy. Paths are taken relative to the upstream's
path prefix: with upstream ``http://host:5000/ogc-api``, ``PROXY/jobs`` is ``host:5000/ogc-api/jobs``.

The one fault: with probability ``lose_answers``, a request that matches one of ``routes``
(method and path pattern, ``*`` standing for one path segment; by default the POSTs that
create or start a job: ``/processes/*/execution``, ``/jobs``, ``/jobs/*/results``) is
forwarded, the upstream's whole answer is read (so the server really created or started the
job), and the client's connection is closed without an answer: the client sees the server
hang up (``RemoteDisconnected``, a ``requests.ConnectionError``).

Each decision comes from a generator seeded with ``seed``, the request (method, path, body)
and how often that same request was seen before, so a run makes the same decisions whatever
the order in which concurrent requests arrive. ``requests`` and ``lost`` count per route
(``"POST /processes/*/execution"``, ``"GET /jobs/*"``, ...), ``upstream_seconds`` sums the
upstream's time to answer per route, ``cut_short`` counts the requests never forwarded because the
client hung up before it had sent them whole (a SIGKILLed client); ``lost_answers`` lists what was
lost: the request's body, the upstream's status, ``Location`` and body. For example::

    with FaultProxy(server_url, lose_answers=0.08, seed=1) as proxy:
        run_a_campaign_against(proxy.url)
    print(proxy.lost, proxy.requests)
"""

from __future__ import annotations

import hashlib
import http.client
import random
import re
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

#: The requests whose answers may be lost: those that create or start a job (Part 1 and Part 4).
JOB_STARTS: tuple[tuple[str, str], ...] = (
    ("POST", "/processes/*/execution"),
    ("POST", "/jobs"),
    ("POST", "/jobs/*/results"),
)
#: Headers that belong to one connection, never forwarded (RFC 9110, 7.6.1).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
#: Answer headers that may carry the upstream's URLs.
URL_HEADERS = frozenset({"location", "content-location", "link"})
#: Media types whose bodies are rewritten (JSON, HTML, XML, plain text: whatever is text).
TEXTUAL = re.compile(r"json|text/|xml|javascript|yaml", re.IGNORECASE)
#: Path segments after which the next segment is an identifier (counted as ``*``).
ID_PARENTS = frozenset({"processes", "jobs", "outputs", "collections", "items"})


@dataclass(frozen=True)
class LostAnswer:
    """A request whose answer the proxy read from the upstream and never passed on."""

    method: str
    path: str
    route: str
    request: bytes
    status: int
    location: str | None
    body: bytes


class FaultProxy:
    """A reverse proxy in front of ``upstream``; a context manager (started on entry, stopped on exit)."""

    def __init__(
        self,
        upstream: str,
        *,
        lose_answers: float = 0.0,
        seed: int = 0,
        routes: tuple[tuple[str, str], ...] = JOB_STARTS,
        timeout: float = 300.0,
    ) -> None:
        if not 0.0 <= lose_answers <= 1.0:
            raise ValueError(f"lose_answers is a probability, got {lose_answers}")
        parts = urlsplit(upstream.rstrip("/"))
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// URL, got {upstream!r}")
        self.upstream = upstream.rstrip("/")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path
        self.lose_answers = lose_answers
        self.seed = seed
        self.routes = routes
        self.timeout = timeout
        self.requests: Counter[str] = Counter()
        self.lost: Counter[str] = Counter()
        self.upstream_seconds: Counter[str] = Counter()  # time the upstream took to answer, summed per route
        self.lost_answers: list[LostAnswer] = []
        self.cut_short: Counter[str] = Counter()  # requests whose client hung up before sending them whole
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread: threading.Thread | None = None

    # -- life ---------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    # -- decisions ----------------------------------------------------------------------------

    def faulty(self, method: str, path: str) -> bool:
        """Whether a request to ``path`` (no query) may lose its answer."""
        return any(method == m and _matches(pattern, path) for m, pattern in self.routes)

    def decide(self, method: str, path: str, body: bytes) -> bool:
        """Whether to lose this request's answer: a draw seeded by the request and its repetition."""
        if self.lose_answers <= 0.0 or not self.faulty(method, path):
            return False
        key = hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()
        with self._lock:
            occurrence = self._seen[key]
            self._seen[key] += 1
        return random.Random(f"{self.seed}:{key}:{occurrence}").random() < self.lose_answers

    def _record(self, route: str, lost: LostAnswer | None, seconds: float = 0.0) -> None:
        with self._lock:
            self.requests[route] += 1
            self.upstream_seconds[route] += seconds
            if lost is not None:
                self.lost[route] += 1
                self.lost_answers.append(lost)

    # -- forwarding ---------------------------------------------------------------------------

    def _rewrite(self, data: bytes) -> bytes:
        """``data`` with the upstream's base URL (also JSON-escaped) replaced by the proxy's, where it is
        a whole URL prefix (``:5000`` is no prefix of ``:50001``, nor ``/ogc-api`` of ``/ogc-apis``)."""
        for old, new in ((self.upstream, self.url), (self.upstream.replace("/", "\\/"), self.url.replace("/", "\\/"))):
            data = re.sub(re.escape(old.encode()) + rb"(?![\w.~%-])", new.encode().replace(b"\\", b"\\\\"), data)
        return data

    def _forward(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes | None
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        """Send the request upstream; its status, reason, headers and whole body."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            connection.putrequest(method, self.prefix + target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                connection.putheader(name, value)
            connection.putheader("Host", f"{self.host}:{self.port}")
            if body is not None:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            answer = connection.getresponse()
            data = b"" if method == "HEAD" else answer.read()
            return answer.status, answer.reason, answer.getheaders(), data
        finally:
            connection.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _read(self, size: int) -> bytes:
                data = self.rfile.read(size)
                if len(data) < size:
                    raise ConnectionAbortedError("the client hung up in the middle of its request")
                return data

            def _line(self) -> bytes:
                line = self.rfile.readline(65537)
                if not line.endswith(b"\n"):
                    raise ConnectionAbortedError("the client hung up in the middle of its request")
                return line

            def _body(self) -> bytes | None:
                """The request's whole body; a request cut short (a killed client) is never forwarded."""
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    chunks = []
                    while size := int(self._line().split(b";")[0].strip() or b"0", 16):
                        chunks.append(self._read(size))
                        self._line()
                    while self._line().strip():  # trailers
                        pass
                    return b"".join(chunks)
                length = self.headers.get("Content-Length")
                return self._read(int(length)) if length is not None else None

            def _handle(self) -> None:
                path = self.path.split("?", 1)[0]
                route = f"{self.command} {route_of(path)}"
                try:
                    body = self._body()
                except ConnectionAbortedError:
                    with proxy._lock:
                        proxy.cut_short[route] += 1
                    self.close_connection = True
                    return
                headers = [
                    (k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"host", "content-length"}
                ]
                lose = proxy.decide(self.command, path, body or b"")
                start = time.monotonic()
                try:
                    status, reason, answer_headers, data = proxy._forward(self.command, self.path, headers, body)
                except OSError as err:
                    proxy._record(route, None, time.monotonic() - start)
                    self._answer(502, "Bad Gateway", [("Content-Type", "text/plain")], f"upstream: {err}".encode())
                    return
                if lose:
                    location = next((v for k, v in answer_headers if k.lower() == "location"), None)
                    lost = LostAnswer(self.command, path, route, body or b"", status, location, data)
                    proxy._record(route, lost, time.monotonic() - start)
                    self.close_connection = True  # hang up without a word
                    return
                proxy._record(route, None, time.monotonic() - start)
                kind = next((v for k, v in answer_headers if k.lower() == "content-type"), "")
                if data and (not kind or TEXTUAL.search(kind)):
                    data = proxy._rewrite(data)
                kept = [
                    (k, proxy._rewrite(v.encode("latin-1")).decode("latin-1") if k.lower() in URL_HEADERS else v)
                    for k, v in answer_headers
                    if k.lower() not in HOP_BY_HOP and (self.command == "HEAD" or k.lower() != "content-length")
                ]
                self._answer(status, reason, kept, data)

            def _answer(self, status: int, reason: str, headers: list[tuple[str, str]], data: bytes) -> None:
                self.send_response_only(status, reason)
                for name, value in headers:
                    self.send_header(name, value)
                if self.command != "HEAD" and status not in (204, 304) and status >= 200:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

        return Handler


class _Server(ThreadingHTTPServer):
    """Threads that do not outlive the proxy's users; a client that hangs up is no error."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # e.g. a SIGKILLed client: reset, broken pipe
            super().handle_error(request, client_address)


def route_of(path: str) -> str:
    """``path`` with its identifiers as ``*`` (``/jobs/ab12/results`` → ``/jobs/*/results``)."""
    segments = path.split("/")
    for i in range(1, len(segments)):
        if segments[i - 1] in ID_PARENTS and segments[i]:
            segments[i] = "*"
    if len(segments) > 3 and segments[1] == "outputs":
        segments = [*segments[:3], "**"]
    return "/".join(segments)


def _matches(pattern: str, path: str) -> bool:
    """Whether ``path`` fits ``pattern``, where ``*`` is one whole path segment."""
    want, have = pattern.rstrip("/").split("/"), path.rstrip("/").split("/")
    return len(want) == len(have) and all(w == "*" or w == h for w, h in zip(want, have, strict=True))
