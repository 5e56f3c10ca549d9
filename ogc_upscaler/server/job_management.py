"""OGC API – Processes Part 4, Job Management (draft OGC 24-051), beside pygeoapi's routes; and the jobs
routes of Part 1 redone on our job table.

Part 4 lets a client that lost the answer to a submission never pay twice: it creates
the job, finds it again in the job list if the answer to that was lost, and then starts
it, as often as it likes.

- ``POST /jobs`` with an execute request naming its ``process`` (an id or the process's URL)
  checks the inputs exactly as an execution does (400, nothing recorded), then records the
  job. With ``Prefer: status="created"`` it stays ``created`` (no worker) until started;
  without, it starts at once. 201, ``Location: /jobs/{id}``, a statusInfo.
- ``POST /jobs/{id}/results`` starts a created job (200, its statusInfo); for a job started
  already, or ended, it starts nothing and answers the same way (a retried start never runs a
  job twice: one guarded update in :class:`~ogc_upscaler.server.jobs.EndpointJobs` decides).
- ``GET /jobs/{id}/definition``: the execute request as submitted (Part 4's jobDefinition).
- ``GET /jobs`` (Part 1's job list, ``created`` jobs included) with the ``processID``, ``status``
  and ``type`` filters and ``limit``/``offset`` paging; ``GET /jobs/{id}``; ``DELETE /jobs/{id}``.
  These replace pygeoapi 0.21's views, which know neither filters nor the ``created`` status.
- ``GET /jobs/{id}/results`` of a created job: 404 (pygeoapi's view answers the others), and
  ``POST /processes/{id}/execution``: the body is checked before pygeoapi reads it, so a body
  that is not a JSON object answers 400, not 500.

``/conformance`` declares Part 4's class and Part 1's ``job-list`` and ``dismiss``.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, make_response, request
from pygeoapi.api import API, F_HTML, F_JSON, FORMAT_TYPES, SYSTEM_LOCALE, APIRequest, evaluate_limit
from pygeoapi.process.base import JobNotFoundError
from pygeoapi.util import DATETIME_FORMAT, render_j2_template, to_json
from werkzeug.exceptions import InternalServerError

from ogc_upscaler.errors import InvalidInput
from ogc_upscaler.server.execute import check_members, preferences, process_of, read_body
from ogc_upscaler.server.jobs import CREATED, STATUSES, EndpointJob
from ogc_upscaler.server.watch import watch_link

PART1 = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf"
JOB_MANAGEMENT = "http://www.opengis.net/spec/ogcapi-processes-4/1.0/conf/job-management"
CONFORMANCE = (JOB_MANAGEMENT, f"{PART1}/job-list", f"{PART1}/dismiss")
RESULTS = "http://www.opengis.net/def/rel/ogc/1.0/results"
#: Part 1's job-list parameters this endpoint does not filter by: refused rather than silently ignored.
UNSUPPORTED_FILTERS = ("datetime", "minDuration", "maxDuration")

View = Callable[..., Any]
#: The most of a job's log served at /jobs/{id}/log (its end: where a failure's cause is).
LOG_BYTES = 1_000_000


def install(app: Flask, api: API, url_prefix: str = "") -> None:
    """Add the Part 4 routes to ``app`` and put ours in place of pygeoapi's job views (see the module)."""
    views = JobViews(api)
    routes = Blueprint("ogc_upscaler_job_management", __name__, url_prefix=url_prefix or None)
    routes.add_url_rule("/jobs", "create", views.create, methods=["POST"])
    routes.add_url_rule("/jobs/<job_id>/results", "start", views.start, methods=["POST"])
    routes.add_url_rule("/jobs/<job_id>/definition", "definition", views.definition, methods=["GET"])
    routes.add_url_rule("/jobs/<job_id>/log", "log", views.log, methods=["GET"])
    app.register_blueprint(routes)
    app.view_functions["pygeoapi.get_jobs"] = views.jobs
    app.view_functions["pygeoapi.get_job_result"] = views.results(app.view_functions["pygeoapi.get_job_result"])
    app.view_functions["pygeoapi.execute_process_jobs"] = views.execute(
        app.view_functions["pygeoapi.execute_process_jobs"]
    )
    app.register_error_handler(InternalServerError, views.internal_error)
    declare_conformance()


def declare_conformance() -> None:
    """Add our classes to those pygeoapi's ``/conformance`` lists for processes (JSON and HTML alike)."""
    import pygeoapi.api.processes as processes_api

    for uri in CONFORMANCE:
        if uri not in processes_api.CONFORMANCE_CLASSES:
            processes_api.CONFORMANCE_CLASSES.append(uri)


def status_info(job: EndpointJob, base_url: str) -> dict[str, Any]:
    """The job as a statusInfo document (Part 1's ``jobID`` and Part 4's ``id`` both)."""
    url = f"{base_url}/jobs/{job.identifier}"
    info: dict[str, Any] = {
        "jobID": job.identifier,
        "id": job.identifier,
        "processID": job.process_id,
        "type": "process",
        "status": job.status,
        "message": job.message,
        "progress": job.progress,
        "created": job.created,
        "updated": job.updated,
    }
    if job.started:
        info["started"] = job.started
    if job.finished:
        info["finished"] = job.finished
    links = [
        _link(f"{url}?f=json", "self", "This job's status"),
        _link(f"{url}/definition?f=json", "describedby", "The execute request of this job"),
        _link(f"{base_url}/jobs?f=json", "up", "The job list"),
    ]
    if job.status not in ("failed", "dismissed"):
        title = "Start this job (POST)" if job.status == CREATED else "The results of this job"
        links.append(_link(f"{url}/results?f=json", RESULTS, title))
    if job_log(job) is not None:
        links.append({"href": f"{url}/log", "rel": "log", "type": "text/plain", "title": "This job's log"})
    if (page := watch_link(job.folder, base_url, job.identifier)) is not None:
        links.append(page)
    info["links"] = links
    return info


def job_log(job: EndpointJob) -> Path | None:
    """The log that says what the job did: the package run's (cwltool's and the tool's own lines), else the
    worker's (an ``upscale`` job, or a job that failed before its package ran)."""
    for path in (job.folder / "run" / job.identifier / "attempt-1" / "stderr.log", job.folder / "worker.log"):
        if path.is_file():
            return path
    return None


def job_definition(job: EndpointJob, base_url: str) -> dict[str, Any]:
    """The execute request as submitted, as Part 4's jobDefinition (``entity`` is the process's URL)."""
    submitted = job.definition
    process = f"{base_url}/processes/{job.process_id}"
    definition: dict[str, Any] = {
        "entity": process,
        "process": process,
        "inputs": submitted.get("inputs", job.inputs),
        "outputs": submitted.get("outputs") or {},
        "response": submitted.get("response") or "raw",
    }
    if submitted.get("prefer"):
        definition["headers"] = {"Prefer": submitted["prefer"]}
    definition["links"] = [
        _link(f"{base_url}/jobs/{job.identifier}/definition?f=json", "self", "This definition"),
        _link(f"{base_url}/jobs/{job.identifier}?f=json", "up", "The job's status"),
    ]
    return definition


class JobViews:
    """The views, over pygeoapi's API object (its manager is our :class:`UpscalerManager`)."""

    def __init__(self, api: API) -> None:
        self.api = api
        self.manager = api.manager
        self.base_url = api.base_url.rstrip("/")

    # -- Part 4 -------------------------------------------------------------------------------

    def create(self) -> Response:
        """``POST /jobs``: check, record as created (or start at once), answer 201 with the statusInfo."""
        req, headers = self._request()
        prefer = request.headers.get("Prefer", "")
        try:
            body = read_body(request.get_data(cache=True))
            process_id = process_of(body.get("process"), list(self.manager.processes), self.base_url)
            definition = {**check_members(body), "prefer": prefer}
            pending = preferences(prefer).get("status") == CREATED
            job = self.manager.create_job(process_id, definition, start=not pending)
        except InvalidInput as err:
            return self._bad_request(req, headers, err)
        headers["Location"] = f"{self.base_url}/jobs/{job.identifier}"
        if pending:
            headers["Preference-Applied"] = 'status="created"'
        return self._json(headers, HTTPStatus.CREATED, status_info(job, self.base_url))

    def start(self, job_id: str) -> Response:
        """``POST /jobs/{id}/results``: start a created job; any other job is answered as it is."""
        req, headers = self._request()
        try:
            job = self.manager.start_job(job_id)
        except JobNotFoundError:
            return self._no_such_job(req, headers, job_id)
        return self._json(headers, HTTPStatus.OK, status_info(job, self.base_url))

    def definition(self, job_id: str) -> Response:
        """``GET /jobs/{id}/definition``: what was submitted."""
        req, headers = self._request()
        try:
            job = self.manager.job(job_id)
        except JobNotFoundError:
            return self._no_such_job(req, headers, job_id)
        return self._json(headers, HTTPStatus.OK, job_definition(job, self.base_url))

    def log(self, job_id: str) -> Response:
        """``GET /jobs/{id}/log``: the job's log as text (its last megabyte), so a failure's cause is one click
        from its status."""
        req, headers = self._request()
        try:
            job = self.manager.job(job_id)
        except JobNotFoundError:
            return self._no_such_job(req, headers, job_id)
        path = job_log(job)
        if path is None:
            return self._exception(req, headers, HTTPStatus.NOT_FOUND, "NoLog", f"job {job_id} has written no log yet")
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - LOG_BYTES))
            text = f.read().decode(errors="replace")
        return Response(text, status=HTTPStatus.OK, mimetype="text/plain")

    # -- Part 1, on our table -----------------------------------------------------------------

    def jobs(self, job_id: str | None = None) -> Response:
        """``GET /jobs``, ``GET /jobs/{id}`` and ``DELETE /jobs/{id}`` (pygeoapi's ``get_jobs`` endpoint)."""
        if job_id is None:
            return self.job_list()
        if request.method == "DELETE":
            return self.dismiss(job_id)
        req, headers = self._request()
        try:
            job = self.manager.job(job_id)
        except JobNotFoundError:
            return self._no_such_job(req, headers, job_id)
        info = status_info(job, self.base_url)
        if req.format == F_HTML:
            return self._html(req, headers, "jobs/job.html", {"jobs": info, "now": _now()})
        return self._json(headers, HTTPStatus.OK, info)

    def job_list(self) -> Response:
        """``GET /jobs``: newest first, filtered by ``processID``, ``status`` and ``type``, paged."""
        req, headers = self._request()
        try:
            limit, offset, process_ids, statuses = self._list_parameters()
        except InvalidInput as err:
            return self._bad_request(req, headers, err)
        types = _values("type")
        if types and "process" not in types:
            rows, total = [], 0  # every job here is of type process
        else:
            rows, total = self.manager.list_jobs(process_ids=process_ids, statuses=statuses, limit=limit, offset=offset)
        document = {
            "jobs": [status_info(job, self.base_url) for job in rows],
            "links": self._page_links(limit, offset, total),
            "numberMatched": total,
            "numberReturned": len(rows),
        }
        if req.format == F_HTML:
            return self._html(req, headers, "jobs/index.html", {"jobs": document, "offset": offset, "now": _now()})
        return self._json(headers, HTTPStatus.OK, document)

    def dismiss(self, job_id: str) -> Response:
        """``DELETE /jobs/{id}``: stop the job and what it started, forget it; a dismissed statusInfo."""
        req, headers = self._request()
        try:
            self.manager.delete_job(job_id)
        except JobNotFoundError:
            return self._no_such_job(req, headers, job_id)
        document = {
            "jobID": job_id,
            "id": job_id,
            "type": "process",
            "status": "dismissed",
            "message": "dismissed",
            "links": [_link(f"{self.base_url}/jobs?f=json", "up", "The job list")],
        }
        return self._json(headers, HTTPStatus.OK, document)

    def results(self, pygeoapi_view: View) -> View:
        """``GET /jobs/{id}/results``: a created job has none yet (404); pygeoapi answers the others."""

        def results(job_id: str) -> Any:
            job = self.manager.jobs.get(job_id)
            if job is None or job.status != CREATED:
                return pygeoapi_view(job_id=job_id)
            req, headers = self._request()
            message = f"job {job_id} was created and not started: POST {self.base_url}/jobs/{job_id}/results starts it"
            return self._exception(req, headers, HTTPStatus.NOT_FOUND, "ResultNotReady", message)

        return results

    def execute(self, pygeoapi_view: View) -> View:
        """``POST /processes/{id}/execution``: the body checked first (400 rather than pygeoapi's 500)."""

        def execute(process_id: str) -> Any:
            data = request.get_data(cache=True)
            if process_id in self.manager.processes and data.strip():
                try:
                    check_members(read_body(data))
                except InvalidInput as err:
                    req, headers = self._request()
                    return self._bad_request(req, headers, err)
            return pygeoapi_view(process_id=process_id)

        return execute

    def internal_error(self, error: InternalServerError) -> Response:
        """An unexpected error as an OGC exception in JSON, not Flask's HTML page (Flask logged the trace)."""
        cause = error.original_exception or error
        document = {
            "type": "NoApplicableCode",
            "code": "NoApplicableCode",
            "description": f"the server failed: {type(cause).__name__}; its log has the details",
        }
        return self._json({"Content-Type": FORMAT_TYPES[F_JSON]}, HTTPStatus.INTERNAL_SERVER_ERROR, document)

    # -- helpers ------------------------------------------------------------------------------

    def _request(self) -> tuple[APIRequest, dict[str, str]]:
        req = APIRequest.from_flask(request, self.api.locales)
        return req, req.get_response_headers(SYSTEM_LOCALE, **self.api.api_headers)

    def _list_parameters(self) -> tuple[int, int, list[str], list[str]]:
        for name in UNSUPPORTED_FILTERS:
            if name in request.args:
                raise InvalidInput(
                    f"the job list is not filtered by {name!r} here",
                    hint="it filters by processID, status and type, and pages with limit and offset",
                )
        try:
            limit = evaluate_limit(request.args.get("limit"), self.api.config["server"].get("limits", {}), {})
            offset = int(request.args.get("offset", 0))
        except ValueError as err:
            raise InvalidInput(f"limit or offset: {err}", hint="both are whole numbers, limit above 0") from None
        if offset < 0:
            raise InvalidInput(f"offset must be 0 or more, got {offset}")
        statuses = _values("status")
        unknown = sorted(set(statuses) - set(STATUSES))
        if unknown:
            raise InvalidInput(f"status {', '.join(unknown)} is not a job status", hint=f"give {', '.join(STATUSES)}")
        return limit, offset, _values("processID"), statuses

    def _page_links(self, limit: int, offset: int, total: int) -> list[dict[str, str]]:
        kept = [(k, v) for k, v in request.args.items(multi=True) if k not in ("f", "offset", "limit")]

        def page(at: int) -> str:
            query = urllib.parse.urlencode([*kept, ("limit", limit), ("offset", at), ("f", "json")])
            return f"{self.base_url}/jobs?{query}"

        links = [_link(page(offset), "self", "This page of the job list")]
        if offset + limit < total:
            links.append(_link(page(offset + limit), "next", "The next page"))
        if offset > 0:
            links.append(_link(page(max(0, offset - limit)), "prev", "The previous page"))
        return links

    def _json(self, headers: dict[str, str], status: int, document: Any) -> Response:
        headers["Content-Type"] = FORMAT_TYPES[F_JSON]
        response = make_response(to_json(document, self.api.pretty_print), status)
        response.headers.update(headers)
        return response

    def _html(self, req: APIRequest, headers: dict[str, str], template: str, data: dict[str, Any]) -> Response:
        config = self.api.config["server"].get("templates", {})
        content = render_j2_template(self.api.tpl_config, config, template, data, req.locale)
        response = make_response(content, HTTPStatus.OK)
        response.headers.update(headers)
        return response

    def _exception(self, req: APIRequest, headers: dict[str, str], status: int, code: str, text: str) -> Response:
        headers, status, content = self.api.get_exception(status, headers, req.format, code, text)
        response = make_response(content, status)
        response.headers.update(headers)
        return response

    def _bad_request(self, req: APIRequest, headers: dict[str, str], err: InvalidInput) -> Response:
        text = f"{err.message} ({err.hint})" if err.hint else err.message
        return self._exception(req, headers, HTTPStatus.BAD_REQUEST, "InvalidParameterValue", text)

    def _no_such_job(self, req: APIRequest, headers: dict[str, str], job_id: str) -> Response:
        text = f"no job {job_id} here (it never existed, or it was dismissed)"
        return self._exception(req, headers, HTTPStatus.NOT_FOUND, "NoSuchJob", text)


def _values(name: str) -> list[str]:
    """A repeatable query parameter; each occurrence may also hold a comma-separated list."""
    return [v.strip() for raw in request.args.getlist(name) for v in raw.split(",") if v.strip()]


def _link(href: str, rel: str, title: str) -> dict[str, str]:
    return {"href": href, "rel": rel, "type": FORMAT_TYPES[F_JSON], "title": title}


def _now() -> str:
    return datetime.now(UTC).strftime(DATETIME_FORMAT)
