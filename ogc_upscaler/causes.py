"""Failures grouped by cause: jobs that failed for the same reason, whatever tile, file or id they name.

A job's error is the tool's own last words (or the backend's, or the collector's). Two jobs fail
for the same cause when their errors differ only in what names the job: numbers, paths, URLs,
hexadecimal ids. The cause is that error with those parts replaced, prefixed with the step that
failed (``run``, ``submit``, ``collect``, ``timeout``…), so a production operator sees a handful of
causes, not a thousand messages, and retries one cause at a time.
"""

from __future__ import annotations

import re

from ogc_upscaler.store import Job

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


def cause(error: str | None, kind: str | None, *, job_id: str | None = None, tile_id: str | None = None) -> str:
    """The cause of a failure from its error and its kind (``run:permanent``, ``submit:exhausted``…); the
    job's own id and its tile's, where the error names them, become ``<job>`` and ``<tile>``.

    >>> cause("Traceback…\\nValueError: band 3 missing in /data/tile-31-4.tif", "run:permanent")
    'run: ValueError: band # missing in <path>'
    >>> cause("HTTP 503 from http://host:5000/jobs/4f2a9c1e", "submit:exhausted")
    'submit: HTTP # from <url>'
    >>> cause("tile UTM20KM-32N-E700N5300 is broken", "run:exhausted", tile_id="UTM20KM-32N-E700N5300")
    'run: tile <tile> is broken'
    """
    step = (kind or "error").split(":", 1)[0]
    lines = [line.strip() for line in (error or "").strip().splitlines() if line.strip()]
    text = lines[-1] if lines else "no error recorded"
    for name, mark in ((job_id, "<job>"), (tile_id, "<tile>")):  # a job's id holds its tile's: the job's first
        if name:
            text = text.replace(name, mark)
    text = _VOLATILE.sub(lambda m: _MARK[m.lastgroup or "number"], text)
    text = re.sub(r"\s+", " ", text)
    if len(text) > LENGTH:
        text = text[: LENGTH - 1] + "…"
    return f"{step}: {text}"


def job_cause(job: Job) -> str:
    """The cause of a failed job's failure."""
    return cause(job.error, job.error_kind, job_id=job.job_id, tile_id=job.tile_id)
