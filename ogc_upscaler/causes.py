"""Failures grouped by cause: jobs that failed for the same reason, whatever tile, file or id they name.

A job's error is the tool's own last words (or the backend's, or the collector's). Two jobs fail
for the same cause when their errors differ only in what names the job: numbers, paths, URLs,
hexadecimal ids. The cause is that error with those parts replaced, prefixed with the step that
failed (``run``, ``submit``, ``collect``, ``timeout``…), so a production operator sees a handful of
causes, not a thousand messages, and retries one cause at a time.
"""

from __future__ import annotations

import re

#: Longest cause kept: errors run on; the start says what went wrong.
LENGTH = 240

_VOLATILE = re.compile(
    r"""
      (?P<url>[a-z][a-z0-9+.-]*://\S+)
    | (?P<path>(?<![\w.])(?:~|\.{1,2})?/[^\s'",:;)]+)
    | (?P<hex>\b(?=[0-9a-f-]*\d)[0-9a-f]{8,}(?:-[0-9a-f]{4,})*\b)
    | (?P<number>(?<![\w.])[-+]?\d+(?:[.,:]\d+)*(?:e[-+]?\d+)?\b)
    """,
    re.VERBOSE | re.IGNORECASE,
)
_MARK = {"url": "<url>", "path": "<path>", "hex": "<id>", "number": "#"}


def cause(error: str | None, kind: str | None) -> str:
    """The cause of a failure from its error and its kind (``run:permanent``, ``submit:exhausted``…).

    >>> cause("Traceback…\\nValueError: band 3 missing in /data/tile-31-4.tif", "run:permanent")
    'run: ValueError: band # missing in <path>'
    >>> cause("HTTP 503 from http://host:5000/jobs/4f2a9c1e", "submit:exhausted")
    'submit: HTTP # from <url>'
    """
    step = (kind or "error").split(":", 1)[0]
    lines = [line.strip() for line in (error or "").strip().splitlines() if line.strip()]
    text = lines[-1] if lines else "no error recorded"
    text = _VOLATILE.sub(lambda m: _MARK[m.lastgroup or "number"], text)
    text = re.sub(r"\s+", " ", text)
    if len(text) > LENGTH:
        text = text[: LENGTH - 1] + "…"
    return f"{step}: {text}"
