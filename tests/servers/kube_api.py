"""A loopback stand-in for the Kubernetes API's ``batch/v1`` jobs, for the calls our code makes.

Serves ``GET /apis/batch/v1/namespaces/NS/jobs`` (with ``limit`` and ``continue`` paging)
and ``DELETE /apis/batch/v1/namespaces/NS/jobs/NAME`` with the shapes of the real API
(``JobList`` with ``metadata.continue``; ``Status`` objects, 404 for a missing job, 403 for
a namespace the service account may not touch). Every request is recorded.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

JOBS = re.compile(r"^/apis/batch/v1/namespaces/([^/]+)/jobs(?:/([^/]+))?$")


class KubeApi:
    """The fake API: ``jobs`` maps namespace to job names; ``forbidden`` namespaces answer 403."""

    def __init__(self, jobs: dict[str, list[str]], forbidden: tuple[str, ...] = ()) -> None:
        self.jobs = {ns: list(names) for ns, names in jobs.items()}
        self.forbidden = forbidden
        self.requests: list[tuple[str, str, dict[str, Any]]] = []  # method, path, body
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._serve("GET")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

            def _serve(self, method: str) -> None:
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with api.lock:
                    api.requests.append((method, self.path, body))
                    match = JOBS.match(url.path)
                    if not match:
                        return self._status(404, "NotFound", f"no route {url.path}")
                    namespace, name = match.groups()
                    if namespace in api.forbidden:
                        message = f'jobs.batch is forbidden: cannot {method.lower()} in the namespace "{namespace}"'
                        return self._status(403, "Forbidden", message)
                    names = api.jobs.setdefault(namespace, [])
                    if method == "GET" and name is None:
                        return self._list(namespace, names, parse_qs(url.query))
                    if method == "DELETE" and name is not None:
                        if name not in names:
                            return self._status(404, "NotFound", f'jobs.batch "{name}" not found')
                        names.remove(name)
                        return self._status(200, "", "", status="Success")
                    return self._status(405, "MethodNotAllowed", method)

            def _list(self, namespace: str, names: list[str], query: dict[str, list[str]]) -> None:
                limit = int(query.get("limit", ["0"])[0]) or len(names) or 1
                start = int(query.get("continue", ["0"])[0] or 0)
                page = names[start : start + limit]
                more = start + limit < len(names)
                items = [
                    {
                        "metadata": {"name": n, "namespace": namespace, "labels": {"toil_run": "toil-x"}},
                        "spec": {"template": {"spec": {"containers": [{"name": "runner-container", "image": "i"}]}}},
                        "status": {"active": 1},
                    }
                    for n in page
                ]
                metadata = {"resourceVersion": "1", **({"continue": str(start + limit)} if more else {})}
                self._send(200, {"kind": "JobList", "apiVersion": "batch/v1", "metadata": metadata, "items": items})

            def _status(self, code: int, reason: str, message: str, status: str = "Failure") -> None:
                body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": status, "code": code}
                if reason:
                    body |= {"reason": reason, "message": message}
                self._send(code, body)

            def _send(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
