"""The OGC API – Processes backend: executions of one process on a remote endpoint, each paid for once.

Follows OGC 18-062r2 and the quirks of real servers (see the shared notes):

- execute with exactly ``Prefer: respond-async``; branch on the HTTP status, never on what was
  asked: 201 + ``Location`` (async), 200 with a statusInfo (async, id in the body), 200 with results
  (the server ran it synchronously: the results are written to the job's folder at once);
- where the server declares Part 4 (Job Management), a job is first created idle
  (``POST /jobs`` with ``Prefer: status="created"``) and then started
  (``POST /jobs/{id}/results``): a lost answer leaves at most an idle job, found again by its
  definition; a start whose answer is lost is repeated (a started job is not started again);
- a Part 1 submission whose answer was lost is looked up in the job list
  (:mod:`ogc_upscaler.backends.ogcapi.lookup`) before anything is sent again;
- ``Accept: application/json`` and ``?f=json`` on every read; JSON parsed whatever the
  Content-Type says; statusInfo read from ``jobID`` or ``id``;
- connection errors, timeouts and 5xx are retryable; 429 and 503 are back-pressure (with
  ``Retry-After``), never a job failure; other 4xx are permanent with the server's message;
- HTTP retries inside the client cover idempotent reads only: a POST is never blindly repeated.

Remote ids are the jobs' URLs, built as ``{url}jobs/{jobID}`` whatever ``Location`` says, so the
ids in the store and in the server's job list always compare equal.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from ogc_upscaler.backends.base import (
    Backend,
    BackendSettings,
    BuildContext,
    Found,
    InDoubt,
    JobRequest,
    Outputs,
    RemoteState,
    RemoteStatus,
    Submission,
)
from ogc_upscaler.backends.ogcapi import lookup
from ogc_upscaler.backends.ogcapi.auth import Auth
from ogc_upscaler.backends.ogcapi.client import Client, json_of
from ogc_upscaler.backends.ogcapi.outputs import fetch_rasters
from ogc_upscaler.errors import BackendError, InvalidConfig

STATUS = {
    "created": RemoteState.QUEUED,
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
#: The conformance class of OGC API – Processes Part 4, Job Management (draft 24-051).
JOB_MANAGEMENT = "ogcapi-processes-4/1.0/conf/job-management"


class Settings(BackendSettings):
    """``type: ogcapi``: each job an execution of ``process`` on the endpoint at ``url``."""

    type: Literal["ogcapi"] = "ogcapi"
    url: str = Field(pattern=r"^https?://", description="the API's base URL (path prefixes are fine)")
    process: str
    requests_per_second: float | None = Field(default=None, gt=0)
    timeout: float = Field(default=60.0, gt=0, description="seconds per HTTP request")
    auth: Auth = Field(default_factory=Auth)
    inputs: dict[str, Any] | None = Field(
        default=None, description="this endpoint's execute inputs as templates over the job's: {job.NAME}"
    )
    job_management: Literal["auto", "off"] = Field(
        default="auto", description="create-then-start (Part 4) where the server declares it; off: execute only"
    )

    def build(self, context: BuildContext) -> OgcApiBackend:
        return OgcApiBackend(
            self.url,
            self.process,
            context.jobs,
            slots=self.parallel,
            requests_per_second=self.requests_per_second,
            timeout=self.timeout,
            auth=self.auth,
            name=self.label,
            inputs=self.inputs,
            job_management=self.job_management == "auto",
        )


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
        job_management: bool = True,
    ) -> None:
        self.name = name
        self.inputs = inputs
        self.client = Client(url, timeout=timeout, requests_per_second=requests_per_second, auth=auth)
        self.url = self.client.url
        self.process = process
        self.workdir = workdir.resolve()
        self.slots = slots
        self.poll_interval = 1.0
        self.poll_max = 15.0
        self.ledger = lookup.Ledger()
        self._job_management: bool | None = None if job_management else False
        self._dismissed: set[str] = set()
        self._description: dict[str, Any] | None = None
        self._listing = True
        self._skip_listing = 0

    # -- the process --------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """The process description (asked patiently: one 5xx never ends a campaign);
        :class:`InvalidConfig` if the process is not there."""
        reply = self.client.patient_get(f"processes/{self.process}", params={"f": "json"})
        if reply.status_code == 404:
            raise InvalidConfig(
                f"backend {self.url}: no process {self.process!r}", hint=f"list the processes at {self.url}processes"
            )
        self.client.raise_for(reply, "describing the process")
        return json_of(reply)

    def check(self, job_id: str, inputs: dict[str, Any]) -> None:
        """Refuse inputs the process does not know, required ones that are missing, and wrong types
        (against the process description, read once)."""
        if self._description is None:
            self._description = self.describe()
        self.check_inputs(self._description, inputs, job_id)

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

    @property
    def job_management(self) -> bool:
        """Whether the server declares Part 4 (asked once, patiently)."""
        if self._job_management is None:
            reply = self.client.patient_get("conformance", params={"f": "json"})
            body = json_of(reply, default={}) if reply.status_code == 200 else {}
            classes = body.get("conformsTo", []) if isinstance(body, dict) else []
            self._job_management = any(str(c).rstrip("/").endswith(JOB_MANAGEMENT) for c in classes)
        return self._job_management

    # -- the backend protocol -----------------------------------------------------------------

    def submit(self, job: JobRequest) -> str:
        """Create and start an execution; its job URL, or ``sync:<folder>`` for a synchronous answer."""
        body = {"inputs": self.request_inputs(job.inputs, job.job_id)}
        if self.job_management:
            return self._create_and_start(job, body)
        started = time.time()
        try:
            reply = self.client.request(
                "POST",
                f"processes/{self.process}/execution",
                json=body,
                headers={"Prefer": "respond-async"},
                params={"f": "json"},
                write=True,
            )
        except InDoubt:
            self.ledger.add(lookup.Sent(job.job_id, job.attempt, started, time.time(), None))
            raise
        self.client.raise_for(reply, f"executing {self.process} for job {job.job_id}")
        remote = self._accepted(reply, job)
        self.ledger.add(lookup.Sent(job.job_id, job.attempt, started, time.time(), remote))
        return remote

    def poll(self, remote_ids: Sequence[str]) -> dict[str, RemoteStatus]:
        """Statuses from the server's job list when it holds enough of ours, else one request per job;
        ids whose status could not be read this time are left out. Idle (created) jobs are started."""
        listed = self._listed(remote_ids)
        statuses: dict[str, RemoteStatus] = {}
        for rid in remote_ids:
            status = listed.get(rid) or self._status(rid)
            if status is None:
                continue
            if status.raw == "created":  # created idle, and its start was not answered: start it now
                refused = self._start(rid)
                if refused:
                    status = RemoteStatus(RemoteState.FAILED, "created", refused, retryable=False)
            statuses[rid] = status
        return statuses

    def results(self, remote_id: str) -> Outputs:
        """The results document; COG outputs are fetched into the job's folder with a STAC catalog."""
        if remote_id.startswith(SYNC_PREFIX):
            folder = Path(remote_id[len(SYNC_PREFIX) :])
            raw = json.loads((folder / "results.json").read_text())
        else:
            reply = self.client.request("GET", remote_id.rstrip("/") + "/results", params={"f": "json"})
            self.client.raise_for(reply, "fetching results")
            raw = json_of(reply)
            folder = self.workdir / _slug(remote_id)
        raw = raw if isinstance(raw, dict) else {"value": raw}
        return Outputs(fetch_rasters(self.client, raw, folder), raw)

    def cancel(self, remote_id: str) -> None:
        """Dismiss the job; confirmed by 200/202/204, or 404/410 (gone already).

        A server that cannot dismiss (405, 501) is a permanent error; 5xx and lost answers retryable.
        """
        if remote_id.startswith(SYNC_PREFIX):
            return
        self._dismissed.add(remote_id)
        reply = self.client.request("DELETE", remote_id, params={"f": "json"})
        if reply.status_code in (404, 410) or reply.status_code < 300:
            return
        if reply.status_code in (405, 501):
            raise BackendError(
                f"{self.url}: the server cannot dismiss jobs (HTTP {reply.status_code}); {remote_id} runs on",
                retryable=False,
            )
        self.client.raise_for(reply, f"dismissing {remote_id}")

    def find(self, job: JobRequest, since: float, known: Callable[[str], bool]) -> Found:
        """Whether this attempt reached the server: its synchronous results on disk, its idle job (Part 4)
        found by its definition, or its job matched in the job list (Part 1)."""
        folder = self._folder(job.job_id, job.attempt)
        if (folder / "results.json").exists():
            return Found(SYNC_PREFIX + str(folder))
        inputs = self.request_inputs(job.inputs, job.job_id)
        if self.job_management:
            return lookup.find_created(self.client, self.process, self.job_url, known, inputs, since)
        listed = lookup.list_jobs(self.client, self.process, newer_than=self._oldest_unanswered(since))
        if listed is None:
            return Found(None, certain=False, reason="the server has no job list to look the submission up in")
        window = (since, since + self.client.timeout)
        found = lookup.find_listed(listed, self.job_url, known, self.ledger, job.job_id, job.attempt, window)
        if found.remote_id is not None:
            self.ledger.resolve(job.job_id, job.attempt, found.remote_id)
        return found

    def _oldest_unanswered(self, since: float) -> float:
        """How far back the job list is read for a submission begun at ``since``: to the answered submission
        before the earliest unanswered one still in the ledger (server and our clock may differ: a margin)."""
        earliest = min((s.started for s in self.ledger.sent if s.remote is None), default=since)
        return min(earliest, since) - 3600.0

    def remember(self, submissions: Sequence[Submission]) -> None:
        """The campaign's recorded order of submissions, where this process has none of its own (a restart)."""
        if not self.ledger.sent:
            for s in submissions:
                self.ledger.add(lookup.Sent(s.job_id, s.attempt, s.at, s.at, s.remote_id))

    def close(self) -> None:
        """Close the HTTP session."""
        self.client.close()

    def job_url(self, job_id: str) -> str:
        """The remote id of the server's job ``job_id``."""
        return f"{self.url}jobs/{job_id}"

    # -- internals ----------------------------------------------------------------------------

    def _create_and_start(self, job: JobRequest, body: dict[str, Any]) -> str:
        """Part 4: create the job idle, then start it (a start that fails is repeated at the next poll)."""
        reply = self.client.request(
            "POST",
            "jobs",
            json={"process": f"{self.url}processes/{self.process}", **body},
            headers={"Prefer": 'status="created"'},
            params={"f": "json"},
            write=True,
        )
        self.client.raise_for(reply, f"creating a job of {self.process} for job {job.job_id}")
        remote = self._accepted(reply, job)
        refused = self._start(remote)
        if refused:  # the idle job would never run: remove it, and fail this attempt
            self.client.request("DELETE", remote, params={"f": "json"})
            raise BackendError(refused, retryable=False)
        return remote

    def _start(self, remote_id: str) -> str | None:
        """Start an idle job; safe to repeat (a started job is not started again).

        A start whose answer was lost or failed for now is repeated at the next poll (the job
        reads ``created`` until then); a refusal (4xx but 409) is returned as the reason.
        """
        try:
            reply = self.client.request("POST", remote_id.rstrip("/") + "/results", params={"f": "json"}, write=True)
            if reply.status_code != 409:  # 409: started already
                self.client.raise_for(reply, f"starting {remote_id}")
        except BackendError as err:
            return None if err.retryable else err.message
        return None

    def _accepted(self, reply: Any, job: JobRequest) -> str:
        """The remote id from an accepted execution or creation (or the folder of a synchronous one)."""
        payload = json_of(reply, default=None)
        job_id = _job_id(payload) if isinstance(payload, dict) and "status" in payload else None
        location = reply.headers.get("Location")
        if reply.status_code == 201 and (job_id or location):
            return self.job_url(job_id or location.rstrip("/").rsplit("/", 1)[-1])
        if reply.status_code in (200, 201) and job_id:
            return self.job_url(job_id)
        if reply.status_code in (200, 204):  # the server ran it synchronously: keep the results
            folder = self._folder(job.job_id, job.attempt)
            folder.mkdir(parents=True, exist_ok=True)
            if reply.status_code == 204:
                links = [link.strip() for link in reply.headers.get("Link", "").split(",") if link.strip()]
                payload = {"links": links}
            (folder / "results.json").write_text(json.dumps(payload if payload is not None else reply.text))
            return SYNC_PREFIX + str(folder)
        raise BackendError(
            f"{self.url}: execute answered {reply.status_code} without a job",
            retryable=True,
            hint="the server may not support this process as configured",
        )

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
            reply = self.client.request("GET", "jobs", params={"f": "json", "limit": min(1000, max(50, 2 * len(ours)))})
        except BackendError:
            return {}
        if reply.status_code in (404, 405, 501):  # no job list here
            self._listing = False
            return {}
        body = json_of(reply, default=None) if reply.status_code == 200 else None
        if body is None:  # an error or malformed JSON this time: ask each job
            return {}
        if not isinstance(body, dict) or not isinstance(body.get("jobs"), list):
            self._listing = False
            return {}
        found = {ours[j]: _status_of(info) for info in body["jobs"] if (j := _job_id(info)) in ours}
        if len(found) < LIST_MIN:
            self._skip_listing = LIST_BACKOFF
        return found

    def _status(self, remote_id: str) -> RemoteStatus | None:
        if remote_id.startswith(SYNC_PREFIX):
            return RemoteStatus(RemoteState.SUCCEEDED, "successful (sync)")
        try:
            reply = self.client.request("GET", remote_id, params={"f": "json"})
        except BackendError:
            return None  # asked again at the next poll
        if reply.status_code == 404:
            if remote_id in self._dismissed:
                return RemoteStatus(RemoteState.CANCELLED, "dismissed")
            return RemoteStatus(RemoteState.LOST, "no-such-job", "the server no longer knows the job", True)
        if reply.status_code >= 400:
            return None
        body = json_of(reply, default=None)
        return _status_of(body) if isinstance(body, dict) else None

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
    value = (info.get("jobID") or info.get("id")) if isinstance(info, dict) else None
    return value if isinstance(value, str) and value else None


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


def _slug(url: str) -> str:
    return "remote-" + uuid.uuid5(uuid.NAMESPACE_URL, url).hex
