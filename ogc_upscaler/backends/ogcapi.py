"""The OGC API – Processes client backend: executions on a remote endpoint, hardened.

Follows OGC 18-062r2 and the quirks of real servers (see the shared notes):

- execute with exactly ``Prefer: respond-async``; branch on the HTTP status, never on what was
  asked: 201 + ``Location`` (async), 200 with a statusInfo (async, id in the body), 200 with results
  (the server ran it synchronously: the results are written to the job's folder at once);
- ``Accept: application/json`` and ``?f=json`` on every read; JSON parsed whatever the
  Content-Type says; statusInfo read from ``jobID`` or ``id``;
- results parsed tolerantly (a mapping of id to value or link, pygeoapi's ``{"outputs": [...]}``,
  a list, a bare value); outputs that are COGs are fetched into the job's folder with a STAC
  catalog, so the collector treats them like local results;
- connection errors, timeouts and 5xx are retryable; 429 and 503 are back-pressure (with
  ``Retry-After``), never a job failure; other 4xx are permanent with the server's message;
- HTTP retries inside the client cover idempotent reads only: a POST is never blindly repeated.

Secrets (tokens, passwords) are read from the environment or files, sent only in headers, and
never written to the store, the logs or an error message.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pystac
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ogc_upscaler.backends.base import Backend, BackPressure, JobRequest, Outputs, RemoteState, RemoteStatus
from ogc_upscaler.campaign import Auth
from ogc_upscaler.errors import BackendError, InvalidConfig

STATUS = {
    "accepted": RemoteState.QUEUED,
    "running": RemoteState.RUNNING,
    "successful": RemoteState.SUCCEEDED,
    "failed": RemoteState.FAILED,
    "dismissed": RemoteState.CANCELLED,
}
SYNC_PREFIX = "sync:"
#: ``{job.NAME}`` in an endpoint's ``inputs`` templates.
JOB_FIELD = re.compile(r"\{job\.([A-Za-z_][A-Za-z0-9_]*)\}")
#: Fewest jobs in flight for which one job-list request replaces their status requests.
LIST_MIN = 3
#: Polls to wait before trying the job list again when its first page missed our jobs.
LIST_BACKOFF = 10
#: Most STAC documents read to find the rasters of one job's outputs.
MAX_STAC_DOCUMENTS = 1000
TIFF_TYPES = ("image/tiff", "image/geotiff")


class _Credentials(requests.auth.AuthBase):
    """Adds the Authorization header; OIDC client-credentials tokens are refreshed before they expire."""

    def __init__(self, auth: Auth, session: requests.Session) -> None:
        self.auth = auth
        self.session = session
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        kind = self.auth.type
        if kind == "bearer":
            request.headers["Authorization"] = f"Bearer {self._static_token()}"
        elif kind == "basic":
            password = _secret(self.auth.password_env, None, "auth.password_env")
            requests.auth.HTTPBasicAuth(self.auth.username or "", password)(request)
        elif kind == "oidc":
            request.headers["Authorization"] = f"Bearer {self._oidc_token()}"
        return request

    def refresh(self) -> None:
        """Forget a cached token (after a 401)."""
        self._expires = 0.0

    def _static_token(self) -> str:
        return _secret(self.auth.token_env, self.auth.token_file, "auth.token_env or auth.token_file")

    def _oidc_token(self) -> str:
        with self._lock:
            if self._token and time.time() < self._expires - 60:
                return self._token
            secret = _secret(self.auth.client_secret_env, None, "auth.client_secret_env")
            data = {"grant_type": "client_credentials", "client_id": self.auth.client_id or "", "client_secret": secret}
            if self.auth.scope:
                data["scope"] = self.auth.scope
            try:
                reply = self.session.post(self.auth.token_url or "", data=data, timeout=30)
            except requests.RequestException as err:
                raise BackendError(
                    f"token endpoint {self.auth.token_url}: {type(err).__name__}", retryable=True
                ) from None
            if reply.status_code != 200:
                raise BackendError(
                    f"token endpoint {self.auth.token_url} answered {reply.status_code}",
                    retryable=reply.status_code >= 500,
                    hint="check the client id and secret",
                )
            body = reply.json()
            self._token = body["access_token"]
            self._expires = time.time() + float(body.get("expires_in", 300))
            return self._token


class OgcApiBackend(Backend):
    """Runs jobs as executions of one process on an OGC API – Processes endpoint."""

    def __init__(
        self,
        url: str,
        process: str,
        workdir: Path,
        *,
        slots: int = 4,
        requests_per_second: float | None = None,
        timeout: float = 60.0,
        auth: Auth | None = None,
        name: str = "ogcapi",
        inputs: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.inputs = inputs
        self.url = url.rstrip("/") + "/"
        self.process = process
        self.workdir = workdir.resolve()
        self.slots = slots
        self.poll_interval = 1.0
        self.poll_max = 15.0
        self.timeout = timeout
        self.session = requests.Session()
        # idempotent reads only; few, because a missed poll is simply polled again next cycle
        reads = Retry(
            total=2,
            backoff_factor=0.3,
            status_forcelist=(502, 504),
            allowed_methods={"GET", "DELETE"},
            respect_retry_after_header=False,
            raise_on_status=False,
        )
        self.session.mount("http://", HTTPAdapter(max_retries=reads))
        self.session.mount("https://", HTTPAdapter(max_retries=reads))
        self.session.headers.update({"Accept": "application/json", "User-Agent": "ogc-upscaler"})
        self.credentials = _Credentials(auth or Auth(), self.session)
        self._min_gap = 1.0 / requests_per_second if requests_per_second else 0.0
        self._last_request = 0.0
        self._dismissed: set[str] = set()
        self._listing = True
        self._skip_listing = 0

    # -- the process --------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """The process description; :class:`InvalidConfig` if the process is not there."""
        reply = self._request("GET", f"processes/{self.process}", params={"f": "json"})
        if reply.status_code == 404:
            raise InvalidConfig(
                f"backend {self.url}: no process {self.process!r}", hint=f"list the processes at {self.url}processes"
            )
        self._raise_for(reply, "describing the process")
        return _json(reply)

    def check_inputs(self, description: dict[str, Any], values: dict[str, Any], job_id: str) -> None:
        """Refuse inputs the process does not know, required ones that are missing, and wrong types."""
        values = self.request_inputs(values, job_id)
        declared = description.get("inputs") or {}
        if isinstance(declared, list):  # 1.0 drafts listed inputs as [{"id": ...}]
            declared = {d.get("id"): d for d in declared}
        unknown = sorted(set(values) - set(declared))
        missing = sorted(k for k, d in declared.items() if int(d.get("minOccurs", 1)) > 0 and k not in values)
        problems = ([f"unknown {', '.join(unknown)}"] if unknown else []) + (
            [f"missing {', '.join(missing)}"] if missing else []
        )
        for key, value in values.items():
            expected = (declared.get(key) or {}).get("schema", {}).get("type")
            if expected and not _fits(value, expected):
                problems.append(f"{key} takes a {expected}, got {value!r}")
        if problems:
            raise InvalidConfig(
                f"job {job_id}: inputs do not match process {self.process!r}: {'; '.join(problems)}",
                hint=f"the process's inputs are: {', '.join(declared)}",
            )

    def request_inputs(self, values: dict[str, Any], job_id: str) -> dict[str, Any]:
        """The execute request's inputs: the job's own, or this endpoint's ``inputs`` templates over them.

        In a template ``{job.NAME}`` is the job's input NAME; a template that is just one
        placeholder keeps the value's type (a list stays a list, a number a number).
        """
        if self.inputs is None:
            return values
        try:
            return {key: _render(template, values) for key, template in self.inputs.items()}
        except KeyError as err:
            raise InvalidConfig(
                f"backend {self.name}: job {job_id} has no input {err.args[0]!r} for its inputs templates",
                hint=f"the job's inputs are: {', '.join(values)}",
            ) from None

    # -- the backend protocol -----------------------------------------------------------------

    def submit(self, job: JobRequest) -> str:
        """POST an execution; returns the job URL, or ``sync:<folder>`` for a synchronous answer."""
        body = {"inputs": self.request_inputs(job.inputs, job.job_id)}
        reply = self._request(
            "POST",
            f"processes/{self.process}/execution",
            json=body,
            headers={"Prefer": "respond-async"},
            params={"f": "json"},
            write=True,
        )
        self._raise_for(reply, f"executing {self.process} for job {job.job_id}")
        if reply.status_code == 201 and reply.headers.get("Location"):
            return urljoin(self.url, reply.headers["Location"])
        payload = _json(reply, default=None)
        if reply.status_code in (200, 201) and isinstance(payload, dict) and "status" in payload:
            job_id = payload.get("jobID") or payload.get("id")
            if job_id:
                return urljoin(self.url, f"jobs/{job_id}")
        if reply.status_code == 200:  # the server ran it synchronously: keep the results
            folder = self._folder(job.job_id, job.attempt)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "results.json").write_text(json.dumps(payload if payload is not None else reply.text))
            return SYNC_PREFIX + str(folder)
        if reply.status_code == 204:
            folder = self._folder(job.job_id, job.attempt)
            folder.mkdir(parents=True, exist_ok=True)
            links = [link.strip() for link in reply.headers.get("Link", "").split(",") if link.strip()]
            (folder / "results.json").write_text(json.dumps({"links": links}))
            return SYNC_PREFIX + str(folder)
        raise BackendError(
            f"{self.url}: execute answered {reply.status_code} without a job",
            retryable=True,
            hint="the server may not support this process as configured",
        )

    def poll(self, remote_ids: Sequence[str]) -> dict[str, RemoteStatus]:
        """Statuses from the server's job list when it holds enough of ours, else one request per job."""
        listed = self._listed(remote_ids)
        return {rid: listed.get(rid) or self._status(rid) for rid in remote_ids}

    def results(self, remote_id: str) -> Outputs:
        """The results document; COG outputs are fetched into the job's folder with a STAC catalog."""
        if remote_id.startswith(SYNC_PREFIX):
            folder = Path(remote_id[len(SYNC_PREFIX) :])
            raw = json.loads((folder / "results.json").read_text())
        else:
            reply = self._request("GET", remote_id.rstrip("/") + "/results", params={"f": "json"})
            self._raise_for(reply, "fetching results")
            raw = _json(reply)
            folder = self.workdir / _slug(remote_id)
        raw = raw if isinstance(raw, dict) else {"value": raw}
        return Outputs(self._fetch_rasters(raw, folder), raw)

    def cancel(self, remote_id: str) -> None:
        """Dismiss the job; 404 or 405 (no dismiss support, or already gone) are fine."""
        if remote_id.startswith(SYNC_PREFIX):
            return
        self._dismissed.add(remote_id)
        with contextlib.suppress(BackendError):
            self._request("DELETE", remote_id, params={"f": "json"})

    def find(self, job_id: str, attempt: int) -> str | None:
        """A synchronous attempt whose results were written; async ones cannot be found remotely."""
        folder = self._folder(job_id, attempt)
        return SYNC_PREFIX + str(folder) if (folder / "results.json").exists() else None

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()

    # -- internals ----------------------------------------------------------------------------

    def _listed(self, remote_ids: Sequence[str]) -> dict[str, RemoteStatus]:
        """Statuses of our jobs found in one ``GET /jobs`` page, when that is cheaper than asking each.

        Used while at least :data:`LIST_MIN` of our jobs are in flight; a server without a job list
        is not asked again, and one whose first page misses our jobs (a busy shared server) is
        asked again only after :data:`LIST_BACKOFF` polls.
        """
        ours = {rid.rstrip("/").rsplit("/", 1)[1]: rid for rid in remote_ids if rid.startswith(self.url + "jobs/")}
        if len(ours) < LIST_MIN or not self._listing or self._skip_listing > 0:
            self._skip_listing -= 1
            return {}
        try:
            reply = self._request("GET", "jobs", params={"f": "json", "limit": min(1000, max(50, 2 * len(ours)))})
        except BackendError:
            return {}
        if reply.status_code in (404, 405, 501):  # no job list here
            self._listing = False
            return {}
        body = _json(reply, default=None) if reply.status_code == 200 else None
        if body is None:  # an error or malformed JSON this time: ask each job
            return {}
        if not isinstance(body, dict) or not isinstance(body.get("jobs"), list):
            self._listing = False
            return {}
        found = {ours[j]: _status_of(info) for info in body["jobs"] if (j := _job_id(info)) in ours}
        if len(found) < LIST_MIN:
            self._skip_listing = LIST_BACKOFF
        return found

    def _status(self, remote_id: str) -> RemoteStatus:
        if remote_id.startswith(SYNC_PREFIX):
            return RemoteStatus(RemoteState.SUCCEEDED, "successful (sync)")
        try:
            reply = self._request("GET", remote_id, params={"f": "json"})
        except BackendError as err:
            return RemoteStatus(RemoteState.RUNNING, f"unknown ({err.message})")
        if reply.status_code == 404:
            if remote_id in self._dismissed:
                return RemoteStatus(RemoteState.CANCELLED, "dismissed")
            return RemoteStatus(RemoteState.LOST, "no-such-job", "the server no longer knows the job", True)
        if reply.status_code >= 400:
            return RemoteStatus(RemoteState.RUNNING, f"HTTP {reply.status_code}")
        return _status_of(_json(reply, default={}) or {})

    def _fetch_rasters(self, raw: dict[str, Any], folder: Path) -> Path | None:
        links = [link for link in _links(raw) if _is_tiff(link)]
        if not links:  # a STAC catalog, collection or item as output: its COG assets
            links = self._stac_assets([link for link in _links(raw) if _is_json(link)])
        if not links:
            return None
        folder.mkdir(parents=True, exist_ok=True)
        catalog = pystac.Catalog(id="results", description="outputs fetched from the OGC API")
        for i, link in enumerate(links):
            target = folder / f"output-{i}.tif"
            reply = self._request("GET", link["href"], stream=True)
            self._raise_for(reply, f"fetching output {link['href']}")
            with target.open("wb") as out:
                for chunk in reply.iter_content(1 << 20):
                    out.write(chunk)
            item = pystac.Item(f"output-{i}", None, None, pystac.utils.str_to_datetime("1970-01-01T00:00:00Z"), {})
            item.add_asset("data", pystac.Asset(str(target), media_type=pystac.MediaType.COG, roles=["data"]))
            catalog.add_item(item)
        catalog.normalize_hrefs(str(folder))
        catalog.save(pystac.CatalogType.SELF_CONTAINED)
        return folder / "catalog.json"

    def _stac_assets(self, links: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The GeoTIFF assets of the STAC documents ``links`` point at, following item and child links."""
        queue, seen, assets = [link["href"] for link in links], set(), []
        while queue and len(seen) < MAX_STAC_DOCUMENTS:
            href = urljoin(self.url, queue.pop(0))
            if href in seen:
                continue
            seen.add(href)
            reply = self._request("GET", href)
            self._raise_for(reply, f"reading the STAC output {href}")
            document = _json(reply, default=None)
            if not isinstance(document, dict):
                continue
            if document.get("type") == "Feature":
                for asset in (document.get("assets") or {}).values():
                    if isinstance(asset, dict) and isinstance(asset.get("href"), str):
                        link = {"href": urljoin(href, asset["href"]), "type": asset.get("type", "")}
                        if _is_tiff(link):
                            assets.append(link)
            elif document.get("type") in ("Catalog", "Collection"):
                for link in document.get("links") or []:
                    if isinstance(link, dict) and link.get("rel") in ("item", "child") and link.get("href"):
                        queue.append(urljoin(href, link["href"]))
        return assets

    def _request(self, method: str, path: str, *, write: bool = False, **kwargs: Any) -> requests.Response:
        url = path if urlsplit(path).scheme else urljoin(self.url, path)
        self._pace()
        try:
            reply = self.session.request(method, url, timeout=self.timeout, auth=self.credentials, **kwargs)
            if reply.status_code == 401 and self.credentials.auth.type == "oidc":
                self.credentials.refresh()
                reply = self.session.request(method, url, timeout=self.timeout, auth=self.credentials, **kwargs)
        except requests.RequestException as err:
            doubt = " (the request may have reached the server)" if write else ""
            raise BackendError(f"{method} {_public(url)}: {type(err).__name__}{doubt}", retryable=True) from None
        if reply.status_code in (429, 503):
            retry_after = _retry_after(reply.headers.get("Retry-After"))
            raise BackPressure(f"{_public(url)} asks to slow down (HTTP {reply.status_code})", retry_after)
        return reply

    def _raise_for(self, reply: requests.Response, doing: str) -> None:
        if reply.status_code < 400:
            return
        detail = _json(reply, default={}) or {}
        text = detail.get("description") or detail.get("detail") or detail.get("title") or reply.reason
        if reply.status_code >= 500:
            raise BackendError(f"{doing}: HTTP {reply.status_code}: {text}", retryable=True)
        if reply.status_code == 401 or reply.status_code == 403:
            raise BackendError(
                f"{doing}: HTTP {reply.status_code} (not allowed): {text}",
                retryable=False,
                hint="check the backend's auth settings",
            )
        if "too many" in str(text).lower() or ("limit" in str(text).lower() and reply.status_code == 400):
            raise BackPressure(f"{doing}: the server is at its job limit: {text}", 30.0)
        raise BackendError(f"{doing}: HTTP {reply.status_code}: {text}", retryable=False)

    def _pace(self) -> None:
        if self._min_gap:
            wait = self._last_request + self._min_gap - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        self._last_request = time.monotonic()

    def _folder(self, job_id: str, attempt: int) -> Path:
        return self.workdir / job_id / f"attempt-{attempt}"


def _render(template: Any, values: dict[str, Any]) -> Any:
    if not isinstance(template, str):
        return template
    whole = JOB_FIELD.fullmatch(template)
    if whole:
        return values[whole[1]]
    return JOB_FIELD.sub(lambda m: str(values[m[1]]), template)


def _status_of(info: Any) -> RemoteStatus:
    """A statusInfo document in our words."""
    info = info if isinstance(info, dict) else {}
    raw = str(info.get("status", "unknown"))
    state = STATUS.get(raw, RemoteState.RUNNING)
    if state is RemoteState.FAILED:
        return RemoteStatus(state, raw, info.get("message") or "the process failed", True)
    return RemoteStatus(state, raw)


def _job_id(info: Any) -> str | None:
    return (info.get("jobID") or info.get("id")) if isinstance(info, dict) else None


def _json(reply: requests.Response, default: Any = ...) -> Any:
    try:
        return json.loads(reply.content or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        if default is ...:
            raise BackendError(f"{_public(reply.url)}: the answer is not JSON", retryable=True) from None
        return default


def _links(raw: Any) -> list[dict[str, Any]]:
    """Every ``{href, type}`` in a results document, whatever its shape."""
    found: list[dict[str, Any]] = []
    if isinstance(raw, dict):
        if isinstance(raw.get("href"), str):
            found.append(raw)
        for value in raw.values():
            found += _links(value)
    elif isinstance(raw, list):
        for value in raw:
            found += _links(value)
    return found


def _is_tiff(link: dict[str, Any]) -> bool:
    kind = str(link.get("type", "")).lower()
    return kind.startswith(TIFF_TYPES) or str(link["href"]).lower().split("?")[0].endswith((".tif", ".tiff"))


def _is_json(link: dict[str, Any]) -> bool:
    kind = str(link.get("type", "")).lower()
    return "json" in kind or str(link["href"]).lower().split("?")[0].endswith(".json")


def _fits(value: Any, expected: str) -> bool:
    checks = {
        "string": lambda v: isinstance(v, str),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
    }
    check = checks.get(expected)
    return check is None or check(value)


def _retry_after(value: str | None) -> float:
    if value is None:
        return 10.0
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return 10.0


def _secret(env: str | None, file: str | None, what: str) -> str:
    if env and os.environ.get(env):
        return os.environ[env]
    if file and Path(file).is_file():
        return Path(file).read_text().strip()
    raise InvalidConfig(
        f"backend auth: no secret found in {what}", hint="set the environment variable or write the file it names"
    )


def _public(url: str) -> str:
    """The URL without credentials or query, for messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"


def _slug(url: str) -> str:
    return "remote-" + uuid.uuid5(uuid.NAMESPACE_URL, url).hex
