"""The HTTP client of one OGC API – Processes endpoint: pacing, credentials, reads retried, writes never.

Reads (GET, DELETE) are retried by urllib3 on a dropped connection and on 502/504; a
*patient* read (the process description, the conformance) is tried again with back-off on
any 5xx, as one failing answer must not end a campaign. A POST is never repeated here:
its lost answer is :class:`~ogc_upscaler.backends.base.InDoubt`, and the backend decides.
429 and 503 are :class:`~ogc_upscaler.backends.base.BackPressure` with the server's
``Retry-After``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ogc_upscaler.backends.base import BackPressure
from ogc_upscaler.backends.ogcapi.auth import Auth, Credentials
from ogc_upscaler.backends.ogcapi.http import mapped, public, retry_after
from ogc_upscaler.errors import BackendError, redact

#: Tries of a patient read, with back-off from :data:`PATIENT_BACKOFF` seconds, doubling.
PATIENT_TRIES = 4
PATIENT_BACKOFF = 1.0


class Client:
    """Requests to the endpoint at ``url`` (its base URL: path prefixes are fine)."""

    def __init__(
        self, url: str, *, timeout: float = 60.0, requests_per_second: float | None = None, auth: Auth | None = None
    ) -> None:
        self.url = url.rstrip("/") + "/"
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
        self.credentials = Credentials(auth or Auth(), self.session, self.url)
        self._min_gap = 1.0 / requests_per_second if requests_per_second else 0.0
        self._last_request = 0.0
        self.sleep = time.sleep

    def absolute(self, path: str) -> str:
        """``path`` resolved against the base URL (an absolute URL stays as it is)."""
        return path if urlsplit(path).scheme else urljoin(self.url, path)

    def request(self, method: str, path: str, *, write: bool = False, **kwargs: Any) -> requests.Response:
        """One request; :class:`BackPressure` on 429/503, errors mapped in :func:`mapped`."""
        url = self.absolute(path)
        self._pace()
        with mapped(method, url, write=write, timeout=self.timeout):
            reply = self.session.request(method, url, timeout=self.timeout, auth=self.credentials, **kwargs)
            if reply.status_code == 401 and self.credentials.auth.type == "oidc":
                self.credentials.refresh()
                reply = self.session.request(method, url, timeout=self.timeout, auth=self.credentials, **kwargs)
        if reply.status_code in (429, 503):
            raise BackPressure(
                f"{public(url)} asks to slow down (HTTP {reply.status_code})",
                retry_after(reply.headers.get("Retry-After")),
            )
        return reply

    def patient_get(self, path: str, **kwargs: Any) -> requests.Response:
        """A GET tried again with back-off on connection errors, 5xx and back-pressure."""
        delay = PATIENT_BACKOFF
        for attempt in range(1, PATIENT_TRIES + 1):
            try:
                reply = self.request("GET", path, **kwargs)
            except BackPressure as err:
                if attempt == PATIENT_TRIES:
                    raise
                self.sleep(max(err.retry_after, delay))
            except BackendError as err:
                if not err.retryable or attempt == PATIENT_TRIES:
                    raise
                self.sleep(delay)
            else:
                if reply.status_code < 500 or attempt == PATIENT_TRIES:
                    return reply
                self.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def download(self, href: str, target: Path) -> None:
        """Stream ``href`` into ``target`` (written whole or not at all); a download cut half way is retryable."""
        url = self.absolute(href)
        tmp = target.with_name(f".{target.name}.part")
        reply = self.request("GET", url, stream=True)
        self.raise_for(reply, f"fetching output {redact(url)}")
        with mapped("GET", url), reply, tmp.open("wb") as out:
            for chunk in reply.iter_content(1 << 20):
                out.write(chunk)
        tmp.replace(target)

    def raise_for(self, reply: requests.Response, doing: str) -> None:
        """Raise the classified error of an answer ≥ 400, with the server's own message."""
        if reply.status_code < 400:
            return
        detail = json_of(reply, default={}) or {}
        detail = detail if isinstance(detail, dict) else {}
        text = detail.get("description") or detail.get("detail") or detail.get("title") or reply.reason
        text = redact(str(text))[:500]
        if reply.status_code >= 500:
            raise BackendError(f"{doing}: HTTP {reply.status_code}: {text}", retryable=True)
        if reply.status_code in (401, 403):
            raise BackendError(
                f"{doing}: HTTP {reply.status_code} (not allowed): {text}",
                retryable=False,
                hint="check the backend's auth settings",
            )
        if "too many" in text.lower() or ("limit" in text.lower() and reply.status_code == 400):
            raise BackPressure(f"{doing}: the server is at its job limit: {text}", 30.0)
        raise BackendError(f"{doing}: HTTP {reply.status_code}: {text}", retryable=False)

    def close(self) -> None:
        """Close the session."""
        self.session.close()

    def _pace(self) -> None:
        if self._min_gap:
            wait = self._last_request + self._min_gap - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        self._last_request = time.monotonic()


def json_of(reply: requests.Response, default: Any = ...) -> Any:
    """The answer's JSON whatever its Content-Type says; ``default`` (or a retryable error) if it is not JSON."""
    try:
        return json.loads(reply.content or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        if default is ...:
            raise BackendError(f"{public(reply.url)}: the answer is not JSON", retryable=True) from None
        return default
    except requests.RequestException as err:  # reading the body broke off
        raise BackendError(
            f"{public(reply.url)}: reading the answer failed ({type(err).__name__})", retryable=True
        ) from None
