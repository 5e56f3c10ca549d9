"""HTTP for the OGC API client: one session, and the one place where requests' errors become ours.

:func:`mapped` wraps every call into requests, response streaming included (as httpx's
``map_httpcore_exceptions`` wraps every call into httpcore):

- a connection that was never made (refused, no route, unknown name, connect timeout):
  :class:`Unreachable`, the request never left;
- a write (POST) whose answer was lost after it left (reset, read timeout, a dropped
  connection): :class:`InDoubt`, the server may have acted on it;
- anything else requests raises (a read that broke off, a download cut half way):
  a retryable :class:`BackendError`.

Messages name the method and the URL without its query string or credentials.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from ogc_upscaler.backends.base import InDoubt, Unreachable
from ogc_upscaler.errors import BackendError

#: Seconds to wait before looking up a submission whose answer was lost (the server may still be at it).
SETTLE = 2.0


@contextlib.contextmanager
def mapped(method: str, url: str, *, write: bool = False, timeout: float = 60.0) -> Iterator[None]:
    """Run the block; re-raise what requests raises as :class:`Unreachable`, :class:`InDoubt` or
    :class:`BackendError` (see the module's documentation)."""
    try:
        yield
    except requests.RequestException as err:
        where = f"{method} {public(url)}"
        if never_left(err):
            raise Unreachable(f"{where}: {_reason(err)}") from None
        if write:
            raise InDoubt(
                f"{where}: {_reason(err)} after the request was sent (the server may have acted on it)",
                settle=min(timeout, SETTLE),
            ) from None
        raise BackendError(f"{where}: {_reason(err)}", retryable=True) from None


def never_left(err: requests.RequestException) -> bool:
    """Whether the request failed before a connection was made: nothing reached the server."""
    if isinstance(err, requests.ConnectTimeout):
        return True
    if not isinstance(err, requests.ConnectionError):
        return False
    cause = err.args[0] if err.args else None
    reason = getattr(cause, "reason", cause)  # urllib3's MaxRetryError holds the last error
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


def public(url: str) -> str:
    """The URL without credentials or query, for messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"


def origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower case, default ports left out."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}{port}"


def retry_after(value: str | None, default: float = 10.0) -> float:
    """Seconds a ``Retry-After`` header asks for (a number or an HTTP date)."""
    if value is None:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return default


def _reason(err: requests.RequestException) -> str:
    cause = err.args[0] if err.args else None
    reason = getattr(cause, "reason", None)
    return f"{type(err).__name__} ({type(reason).__name__})" if reason is not None else type(err).__name__
