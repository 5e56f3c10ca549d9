"""The fault proxy (tests/servers/fault_proxy.py) in front of a tiny upstream started here."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from .servers.fault_proxy import FaultProxy, route_of

TIFF = bytes(range(256)) * 4


class Upstream:
    """Answers like a small OGC API server, under a path prefix, and records what reached it."""

    def __init__(self, prefix: str = "/ogc-api") -> None:
        self.prefix = prefix
        self.seen: list[dict[str, Any]] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}{prefix}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: bytes, kind: str, **headers: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name.replace("_", "-"), value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                upstream.seen.append({"method": "GET", "path": self.path, "headers": dict(self.headers)})
                if self.path.startswith(f"{upstream.prefix}/outputs/"):
                    self._send(200, TIFF, "image/tiff")
                    return
                links = [{"href": f"{upstream.url}/jobs/j1/results"}, {"href": f"{upstream.url}-old/jobs/j1"}]
                body = {"jobID": "j1", "status": "successful", "links": links}
                self._send(200, json.dumps(body).encode(), "application/json", X_Upstream="yes")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                upstream.seen.append({"method": "POST", "path": self.path, "headers": dict(self.headers), "body": body})
                self._send(201, b"null", "application/json", Location=f"{upstream.url}/jobs/j{len(upstream.seen)}")

        return Handler

    def __enter__(self) -> Upstream:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with Upstream() as server:
        yield server


def test_requests_and_answers_pass_through_with_the_upstreams_urls_rewritten(upstream) -> None:
    with FaultProxy(upstream.url) as proxy:
        reply = requests.get(f"{proxy.url}/jobs/j1?f=json", headers={"Accept": "application/json"}, timeout=10)
        tiff = requests.get(f"{proxy.url}/outputs/j1/result/out.tif", timeout=10)
    assert reply.status_code == 200 and reply.headers["X-Upstream"] == "yes"
    assert reply.json()["links"] == [{"href": f"{proxy.url}/jobs/j1/results"}, {"href": f"{upstream.url}-old/jobs/j1"}]
    assert upstream.seen[0]["path"] == "/ogc-api/jobs/j1?f=json"
    assert upstream.seen[0]["headers"]["Accept"] == "application/json"
    assert tiff.content == TIFF and tiff.headers["Content-Type"] == "image/tiff"
    assert proxy.requests == {"GET /jobs/*": 1, "GET /outputs/*/**": 1} and not proxy.lost


def test_a_post_reaches_the_upstream_with_its_body_and_its_location_is_rewritten(upstream) -> None:
    with FaultProxy(upstream.url) as proxy:
        reply = requests.post(
            f"{proxy.url}/processes/echo/execution", json={"inputs": {"name": "A"}}, headers={"Prefer": "respond-async"}
        )
    assert reply.status_code == 201 and reply.headers["Location"] == f"{proxy.url}/jobs/j1"
    assert json.loads(upstream.seen[0]["body"]) == {"inputs": {"name": "A"}}
    assert upstream.seen[0]["headers"]["Prefer"] == "respond-async"


def test_a_lost_answer_reaches_the_upstream_once_and_the_client_sees_the_server_hang_up(upstream) -> None:
    with FaultProxy(upstream.url, lose_answers=1.0) as proxy:
        with pytest.raises(requests.ConnectionError):
            requests.post(f"{proxy.url}/processes/echo/execution", json={"inputs": {"name": "A"}}, timeout=10)
        status = requests.get(f"{proxy.url}/jobs/j1", timeout=10)  # not a route that loses answers
    assert [s["method"] for s in upstream.seen] == ["POST", "GET"]
    assert status.status_code == 200
    assert proxy.lost == {"POST /processes/*/execution": 1}
    (lost,) = proxy.lost_answers
    assert lost.status == 201 and lost.location == f"{upstream.url}/jobs/j1"
    assert json.loads(lost.request) == {"inputs": {"name": "A"}}


def test_a_request_cut_short_by_its_client_never_reaches_the_upstream(upstream) -> None:
    with FaultProxy(upstream.url) as proxy:
        with socket.create_connection(("127.0.0.1", int(proxy.url.rsplit(":", 1)[1]))) as client:
            client.sendall(b"POST /processes/echo/execution HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        deadline = time.monotonic() + 10
        while not proxy.cut_short and time.monotonic() < deadline:
            time.sleep(0.05)
    assert proxy.cut_short == {"POST /processes/*/execution": 1}
    assert upstream.seen == [] and not proxy.requests


def test_decisions_depend_on_the_seed_and_the_request_not_on_arrival_order() -> None:
    def draws(seed: int, order: list[bytes]) -> dict[bytes, list[bool]]:
        proxy = FaultProxy("http://127.0.0.1:9", lose_answers=0.5, seed=seed)
        try:
            decided: dict[bytes, list[bool]] = {}
            for body in order:
                decided.setdefault(body, []).append(proxy.decide("POST", "/processes/p/execution", body))
            return decided
        finally:
            proxy.stop()

    bodies = [f'{{"name": "T{i}"}}'.encode() for i in range(40)] * 2
    assert draws(1, bodies) == draws(1, bodies[::-1])
    assert draws(1, bodies) != draws(2, bodies)
    lost = sum(sum(v) for v in draws(1, bodies).values())
    assert 20 < lost < 60
    proxy = FaultProxy("http://127.0.0.1:9", lose_answers=1.0)
    proxy.stop()
    assert not proxy.decide("GET", "/jobs/j1", b"") and not proxy.decide("POST", "/processes/p", b"")
    assert proxy.decide("POST", "/jobs", b"") and proxy.decide("POST", "/jobs/j1/results", b"")


def test_routes_name_identifiers_as_stars() -> None:
    assert route_of("/processes/echo/execution") == "/processes/*/execution"
    assert route_of("/jobs/3f2a/results") == "/jobs/*/results"
    assert route_of("/jobs") == "/jobs"
    assert route_of("/outputs/j1/result/a/b.tif") == "/outputs/*/**"
