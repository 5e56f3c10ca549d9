"""Finding a submission whose answer was lost, in the server's job list, so it is never paid for twice.

OGC API – Processes Part 1 gives a client no id of its own to send, so a lost answer to
``POST …/execution`` leaves a job the client cannot name. It is looked up here among the
jobs of the process that the store does not know:

- **in this process's own order of submissions** (:class:`Ledger`): submissions are sent
  one at a time, so the server creates their jobs in the same order. The jobs created
  between the last answered submission before and the first one after (by the server's
  own ``created`` times: no clock is compared) belong to the unanswered submissions in
  between, in order; when they are as many, each is matched; when there are none, none
  arrived;
- **after a restart** (no ledger): the jobs created while the request could have been
  handled, by our clock against the server's, with a margin.

Anything else (more jobs than submissions: another client; fewer: some never arrived, but
which?) cannot be decided, and the job is *in doubt*.

Servers with Part 4 (Job Management) make this exact: jobs are created idle
(``Prefer: status="created"``) and each one's definition can be read back, so a lost answer
leaves an idle job that is found by its inputs (:func:`find_created`).
"""

from __future__ import annotations

import collections
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ogc_upscaler.backends.base import NOT_THERE, Found
from ogc_upscaler.backends.ogcapi.client import Client, json_of

#: Jobs asked for per page of the job list (servers cap it: pygeoapi's default is 10).
PAGE = 1000
#: Pages read at most when looking a submission up.
MAX_PAGES = 50
#: Seconds by which the server's clock may differ from ours, when only clocks can be compared.
CLOCK_MARGIN = 5.0


@dataclass(frozen=True)
class Listed:
    """One job of the server's job list: its id, process, status and creation time (server clock)."""

    job_id: str
    process_id: str | None
    status: str
    created: float | None


@dataclass
class Sent:
    """One submission of this process: when it was sent and answered, and the job id it got (None: lost)."""

    job_id: str
    attempt: int
    started: float
    ended: float
    remote: str | None


class Ledger:
    """This process's recent submissions to one process of one endpoint, in the order they were sent."""

    def __init__(self, size: int = 10_000) -> None:
        self.sent: collections.deque[Sent] = collections.deque(maxlen=size)

    def add(self, sent: Sent) -> None:
        """Record a submission once its answer came (or was lost)."""
        self.sent.append(sent)

    def resolve(self, job_id: str, attempt: int, remote: str) -> None:
        """A lost submission was matched with the server's job ``remote``."""
        for sent in self.sent:
            if sent.job_id == job_id and sent.attempt == attempt:
                sent.remote = remote

    def gap(self, job_id: str, attempt: int, listed: dict[str, Listed]) -> tuple[float, float, list[Sent]] | None:
        """The server-time window of the unanswered run of submissions holding this one, and that run.

        The window is bounded by the ``created`` times of the nearest answered submissions
        before and after that the job list shows; None if this submission is not in the ledger.
        """
        entries = list(self.sent)
        index = next((i for i, s in enumerate(entries) if s.job_id == job_id and s.attempt == attempt), None)
        if index is None:
            return None
        low, high = float("-inf"), float("inf")
        first, last = 0, len(entries)
        for i in range(index - 1, -1, -1):
            shown = listed.get(entries[i].remote or "")
            if shown is not None and shown.created is not None:
                low, first = shown.created, i + 1
                break
        for i in range(index + 1, len(entries)):
            shown = listed.get(entries[i].remote or "")
            if shown is not None and shown.created is not None:
                high, last = shown.created, i
                break
        return low, high, [s for s in entries[first:last] if s.remote is None]


def list_jobs(
    client: Client, process: str, status: str | None = None, newer_than: float | None = None
) -> list[Listed] | None:
    """The server's jobs of ``process`` (as far as :data:`MAX_PAGES`, and, where the list runs newest first,
    until a page holds no job created after ``newer_than``); None without a job list."""
    found: list[Listed] = []
    offset = 0
    for _ in range(MAX_PAGES):
        params: dict[str, Any] = {"f": "json", "limit": PAGE, "offset": offset, "processID": process}
        if status:
            params["status"] = status
        reply = client.request("GET", "jobs", params=params)
        if reply.status_code in (404, 405, 501) and not found:
            return None
        client.raise_for(reply, "reading the job list")
        body = json_of(reply, default=None)
        if not isinstance(body, dict) or not isinstance(body.get("jobs"), list):
            return found or None
        page = [listed for info in body["jobs"] if (listed := _listed(info)) is not None]
        found += [j for j in page if j.process_id in (None, process)]
        matched = body.get("numberMatched")
        offset += len(body["jobs"])
        if not body["jobs"] or (isinstance(matched, int) and offset >= matched):
            break
        if newer_than is not None and page and all(j.created is not None and j.created < newer_than for j in page):
            break  # a whole page older than the submission: the list runs newest first (pygeoapi, ours)
    return found


def find_listed(
    listed: Iterable[Listed],
    url_of: Callable[[str], str],
    known: Callable[[str], bool],
    ledger: Ledger,
    job_id: str,
    attempt: int,
    window: tuple[float, float],
) -> Found:
    """Match an unanswered Part 1 submission with a job of the list (see the module's documentation).

    ``window`` is when the request could have been handled, by our clock (used after a restart).
    """
    by_url = {url_of(j.job_id): j for j in listed}
    unknown = {url: j for url, j in by_url.items() if not known(url)}
    if any(j.created is None for j in unknown.values()):
        return Found(None, certain=False, reason="the server's job list gives no creation times to match it by")
    gap = ledger.gap(job_id, attempt, by_url)
    if gap is not None:
        low, high, lost = gap
        candidates = sorted((u for u, j in unknown.items() if low < (j.created or 0.0) < high), key=_created(unknown))
        position = next(i for i, s in enumerate(lost) if s.job_id == job_id and s.attempt == attempt)
        if len(candidates) == len(lost):
            return Found(candidates[position])
        if not candidates:
            return NOT_THERE
        return Found(
            None,
            certain=False,
            reason=f"{len(candidates)} jobs nobody here knows were created on the server around "
            f"{len(lost)} unanswered submissions",
        )
    start, end = window
    candidates = [u for u, j in unknown.items() if start - CLOCK_MARGIN <= (j.created or 0.0) <= end + CLOCK_MARGIN]
    if len(candidates) == 1:
        return Found(candidates[0])
    if not candidates:
        return NOT_THERE
    return Found(None, certain=False, reason=f"{len(candidates)} jobs nobody here knows were created while it was sent")


def find_created(
    client: Client,
    process: str,
    url_of: Callable[[str], str],
    known: Callable[[str], bool],
    inputs: dict[str, Any],
    since: float,
) -> Found:
    """A Part 4 submission: the job of ``process`` nobody here knows, created since the submission began,
    whose definition has these ``inputs`` (idle if only its creation was answered, started if the start
    was too).

    Other idle jobs with the same inputs are deleted: they are this submission's own duplicates and
    never ran.
    """
    listed = list_jobs(client, process, newer_than=since - CLOCK_MARGIN)
    if listed is None:
        return Found(None, certain=False, reason="the server's job list cannot be read")
    candidates = sorted(
        (j for j in listed if not known(url_of(j.job_id)) and (j.created is None or j.created >= since - CLOCK_MARGIN)),
        key=lambda j: (j.status != "created", j.created or 0.0),  # a started one first: it is the one to keep
    )
    matches = []
    for job in candidates:
        reply = client.request("GET", f"jobs/{job.job_id}/definition", params={"f": "json"})
        if reply.status_code == 404:
            continue
        client.raise_for(reply, f"reading the definition of job {job.job_id}")
        definition = json_of(reply, default={}) or {}
        if _same(definition.get("inputs"), inputs):
            matches.append(job)
    if not matches:
        return NOT_THERE
    for duplicate in matches[1:]:
        if duplicate.status == "created":
            client.request("DELETE", url_of(duplicate.job_id), params={"f": "json"})
    return Found(url_of(matches[0].job_id))


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _created(unknown: dict[str, Listed]) -> Callable[[str], float]:
    return lambda url: unknown[url].created or 0.0


def _listed(info: Any) -> Listed | None:
    if not isinstance(info, dict):
        return None
    job_id = info.get("jobID") or info.get("id")
    if not isinstance(job_id, str):
        return None
    process = info.get("processID") or info.get("process_id")
    return Listed(job_id, process if isinstance(process, str) else None, str(info.get("status", "")), _time(info))


def _time(info: dict[str, Any]) -> float | None:
    text = info.get("created")
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
