"""A small OGC API – Processes server on loopback that misbehaves on purpose, for the client's tests
(and, with ``faults=False`` and ``run_seconds=0``, a fast server for ``bench/bench_ogcapi.py``).

One process, ``echo`` (input ``name``: string), run asynchronously: a job succeeds one second
after it is created, except for names listed in ``stuck``, which never finish. Faults come from
a fixed schedule per request kind, so a run is reproducible:

- ``POST /processes/echo/execution``: every 4th answers 500, every 5th 429 with Retry-After: 1
  (both before any job is created, so a retry is never a duplicate);
- ``GET /jobs/{id}``: every 3rd answers 503 with Retry-After, every 7th sends malformed JSON,
  every 11th drops the connection, every 13th answers after 3 s (past the client's timeout);
- ``GET /jobs/{id}/results``: the first answer for each job is a 500.

Further faults, each off unless asked for: ``describe_failures`` (the first answers to the process
description are 500), ``delete_failures`` (the first dismissals answer 502), ``cut_downloads`` (the
first download of each job's COG stops half way), ``stac_url`` (results link STAC documents on
another server, with ``stac_query`` appended to every link, as a presigned URL has one),
``broken_tokens`` (the token endpoint answers without an ``access_token``). ``authorizations``
records the Authorization header of every request for a STAC document or COG.

With a ``token``, every request must carry ``Authorization: Bearer <token>`` (else 401). With
``basic=(user, password)``, HTTP basic credentials. With ``oidc=(client_id, secret)``, a bearer token
from ``POST /token`` (OAuth2 client credentials) valid ``token_lifetime`` seconds; with
``revoke_every=k`` every k-th request revokes the token it carries (answering 401), as a server
restart or key rotation would.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FaultyServer:
    """Start with :meth:`start`; ``url``, ``executions`` (per name) and ``dismissed`` tell what happened."""

    def __init__(
        self,
        token: str | None = None,
        stuck: tuple[str, ...] = (),
        *,
        faults: bool = True,
        run_seconds: float = 1.0,
        basic: tuple[str, str] | None = None,
        oidc: tuple[str, str] | None = None,
        token_lifetime: float = 300.0,
        revoke_every: int = 0,
        input_name: str = "name",
        stac_results: bool = False,
        describe_failures: int = 0,
        delete_failures: int = 0,
        cut_downloads: bool = False,
        stac_url: str | None = None,
        stac_query: str = "",
        broken_tokens: bool = False,
    ) -> None:
        self.describe_failures = describe_failures
        self.delete_failures = delete_failures
        self.cut_downloads = cut_downloads
        self.stac_query = stac_query
        self.broken_tokens = broken_tokens
        self.authorizations: list[str] = []
        self.cut: set[str] = set()
        self.stac_results = stac_results  # results as a link to a STAC catalog whose item has a COG
        self.input_name = input_name  # another deployment of `echo` may call its input otherwise
        self.token = token
        self.basic = basic
        self.oidc = oidc
        self.token_lifetime = token_lifetime
        self.revoke_every = revoke_every
        self.issued: dict[str, float] = {}  # live tokens and their expiry
        self.tokens: list[str] = []  # every token issued
        self.authorised = itertools.count(1)
        self.stuck = set(stuck)
        self.faults = faults
        self.run_seconds = run_seconds
        self.requests: Counter[str] = Counter()
        self.routes: Counter[str] = Counter()  # list, status, results
        self.jobs: dict[str, dict[str, Any]] = {}
        self.executions: Counter[str] = Counter()
        self.dismissed: list[str] = []
        self.unauthorised = 0
        self.counters = {k: itertools.count(1) for k in ("post", "status", "results")}
        self.results_seen: set[str] = set()
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.stac_url = stac_url or self.url

    def start(self) -> FaultyServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(
                self, code: int, body: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None
            ) -> None:
                data = raw if raw is not None else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def parse_request(self) -> bool:
                ok = super().parse_request()
                server.requests[self.command] += 1
                return ok

            def _authorised(self) -> bool:
                given = self.headers.get("Authorization", "")
                if server.token is not None:
                    ok = given == f"Bearer {server.token}"
                elif server.basic is not None:
                    ok = given == "Basic " + base64.b64encode(":".join(server.basic).encode()).decode()
                elif server.oidc is not None:
                    token = given.removeprefix("Bearer ")
                    ok = server.issued.get(token, 0.0) > time.time()
                    if ok and server.revoke_every and next(server.authorised) % server.revoke_every == 0:
                        server.issued.pop(token, None)
                        ok = False
                else:
                    ok = True
                if not ok:
                    server.unauthorised += 1
                    self._send(401, {"code": "Unauthorized", "description": "credentials required"})
                return ok

            def _token(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                grant = (form.get("grant_type", [""])[0], form.get("client_id", [""])[0])
                if server.oidc is None or grant != ("client_credentials", server.oidc[0]):
                    return self._send(400, {"error": "unsupported_grant_type"})
                if form.get("client_secret", [""])[0] != server.oidc[1]:
                    return self._send(401, {"error": "invalid_client"})
                if server.broken_tokens:
                    return self._send(200, {"token_type": "Bearer", "expires_in": 300})
                token = uuid.uuid4().hex
                server.issued[token] = time.time() + server.token_lifetime
                server.tokens.append(token)
                self._send(200, {"access_token": token, "token_type": "Bearer", "expires_in": server.token_lifetime})

            def do_GET(self) -> None:
                path = self.path.split("?")[0].rstrip("/")
                parts = path.split("/")
                if parts[1:2] == ["stac"] and server.stac_results:
                    server.authorizations.append(self.headers.get("Authorization", ""))
                    if server.stac_query and server.stac_query not in self.path:
                        return self._send(403, {"description": "the signature is missing"})
                    return self._stac(parts[2], parts[3])
                if not self._authorised():
                    return
                if path == "/processes/echo" and server.describe_failures > 0:
                    server.describe_failures -= 1
                    return self._send(500, {"description": "the process registry is restarting"})
                if path == "/processes/echo":
                    return self._send(
                        200,
                        {
                            "id": "echo",
                            "version": "1.0",
                            "jobControlOptions": ["async-execute"],
                            "inputs": {server.input_name: {"schema": {"type": "string"}, "minOccurs": 1}},
                            "outputs": {"echo": {"schema": {"type": "string"}}},
                        },
                    )
                if path == "/jobs":
                    return self._list()
                if len(parts) >= 3 and parts[1] == "jobs":
                    return self._job(parts[2], results=len(parts) == 4 and parts[3] == "results")
                self._send(404, {"code": "NotFound"})

            def _stac(self, job_id: str, name: str) -> None:
                query = f"?{server.stac_query}" if server.stac_query else ""
                documents = {
                    "catalog.json": {"type": "Catalog", "id": job_id, "stac_version": "1.0.0", "description": "x",
                                     "links": [{"rel": "item", "href": f"./item.json{query}"}]},
                    "item.json": {"type": "Feature", "id": job_id, "stac_version": "1.0.0", "links": [],
                                  "assets": {"data": {"href": f"data.tif{query}",
                                                      "type": "image/tiff; application=geotiff"}}},
                }  # fmt: skip
                if name == "data.tif":
                    with server.lock:
                        cut = server.cut_downloads and job_id not in server.cut
                        server.cut.add(job_id)
                    if cut:  # promise the whole file, send half of it, hang up
                        data = _cog()
                        self.send_response(200)
                        self.send_header("Content-Type", "image/tiff")
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data[: len(data) // 2])
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return None
                    return self._send(200, raw=_cog())
                return self._send(200, documents[name]) if name in documents else self._send(404, {})

            def _list(self) -> None:
                server.routes["list"] += 1
                query = urllib.parse.parse_qs(self.path.partition("?")[2])
                limit = int(query.get("limit", ["10"])[0])
                n = next(server.counters["status"]) if server.faults else 1
                if n % 3 == 0:
                    return self._send(503, {"description": "busy"}, {"Retry-After": "1"})
                if n % 7 == 0:
                    return self._send(200, raw=b'{"jobs": [{"jobID": ')
                with server.lock:
                    newest = sorted(server.jobs.items(), key=lambda kv: kv[1]["created"], reverse=True)[:limit]
                jobs = [{"jobID": job_id, "status": self._state(job), "type": "process"} for job_id, job in newest]
                return self._send(200, {"jobs": jobs, "links": []})

            def _state(self, job: dict[str, Any]) -> str:
                done = job["name"] not in server.stuck and time.time() - job["created"] >= server.run_seconds
                return "successful" if done else "running"

            def _job(self, job_id: str, results: bool) -> None:
                server.routes["results" if results else "status"] += 1
                job = server.jobs.get(job_id)
                if job is None:
                    return self._send(404, {"code": "no-such-job"})
                done = job["name"] not in server.stuck and time.time() - job["created"] >= server.run_seconds
                if results:
                    with server.lock:
                        first = job_id not in server.results_seen
                        server.results_seen.add(job_id)
                    if first and server.faults:
                        return self._send(500, {"description": "results store hiccup"})
                    if not done:
                        return self._send(404, {"code": "result-not-ready"})
                    if server.stac_results:
                        query = f"?{server.stac_query}" if server.stac_query else ""
                        href = f"{server.stac_url}/stac/{job_id}/catalog.json{query}"
                        link = {"href": href, "type": "application/json"}
                        return self._send(200, {"result": link})
                    return self._send(200, {"echo": {"value": f"echo {job['name']}"}})
                n = next(server.counters["status"]) if server.faults else 1
                if n % 3 == 0:
                    return self._send(503, {"description": "busy"}, {"Retry-After": "1"})
                if n % 7 == 0:
                    return self._send(200, raw=b'{"status": "runn')
                if n % 11 == 0:
                    self.close_connection = True
                    self.connection.close()
                    return None
                if n % 13 == 0:
                    time.sleep(3)
                status = "successful" if done else "running"
                return self._send(200, {"jobID": job_id, "status": status, "type": "process"})

            def do_POST(self) -> None:
                if self.path.split("?")[0] == "/token":
                    return self._token()
                if not self._authorised():
                    return
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                n = next(server.counters["post"]) if server.faults else 1
                if n % 4 == 0:
                    return self._send(500, {"description": "internal error"})
                if n % 5 == 0:
                    return self._send(429, {"description": "too many requests"}, {"Retry-After": "1"})
                name = body.get("inputs", {}).get(server.input_name, "")
                job_id = uuid.uuid4().hex
                with server.lock:
                    server.jobs[job_id] = {"name": name, "created": time.time()}
                    server.executions[name] += 1
                self._send(201, None, {"Location": f"{server.url}/jobs/{job_id}"})

            def do_DELETE(self) -> None:
                if not self._authorised():
                    return
                if server.delete_failures > 0:
                    server.delete_failures -= 1
                    return self._send(502, {"description": "bad gateway"})
                job_id = self.path.split("?")[0].rstrip("/").split("/")[-1]
                job = server.jobs.pop(job_id, None)
                if job is None:
                    return self._send(404, {"code": "no-such-job"})
                server.dismissed.append(job["name"])
                self._send(200, {"jobID": job_id, "status": "dismissed"})

        return Handler


_COG: list[bytes] = []


def _cog() -> bytes:
    """A small Cloud-Optimized GeoTIFF (64 x 64 px, UTM 32N), made once."""
    if not _COG:
        import numpy as np
        from rasterio.io import MemoryFile
        from rasterio.transform import from_origin

        profile = {"driver": "COG", "width": 64, "height": 64, "count": 1, "dtype": "float32", "crs": "EPSG:32632",
                   "transform": from_origin(700000, 5340000, 20, 20)}  # fmt: skip
        with MemoryFile() as memory:
            with memory.open(**profile) as dst:
                dst.write(np.ones((64, 64), "float32"), 1)
            _COG.append(memory.read())
    return _COG[0]
