"""The endpoint's settings, and the pygeoapi config and OpenAPI document written from them.

Operators give a few settings (a state folder, the application packages, the local folders
inputs may read, whether URLs of internal hosts may be fetched, the largest campaign, the
public URL); :func:`prepare` writes ``STATE/pygeoapi.yml`` (our job
manager, one process per package, ``upscale``) and ``STATE/openapi.yml``, and returns the
environment pygeoapi needs (``PYGEOAPI_CONFIG``, ``PYGEOAPI_OPENAPI``), for
``ogc-upscaler serve`` and for gunicorn alike.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import multiprocessing
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ogc_upscaler.cwl import Package, check_commands, load_package, workflows
from ogc_upscaler.errors import InvalidConfig, InvalidPackage
from ogc_upscaler.server.campaign_size import DEFAULT_MAX_TILES

log = logging.getLogger(__name__)

PROCESSES = "ogc_upscaler.server.processes"
OGC_ONLY = frozenset({"contentMediaType", "contentEncoding"})


@dataclass(frozen=True)
class ServerSettings:
    """What an endpoint serves and where it keeps its jobs.

    ``allow_internal_urls`` lets requests name URLs of loopback, private and link-local hosts (off: the
    server would fetch from inside its own network for anyone); ``max_tiles`` is the most tiles one
    ``upscale`` campaign may cover; ``watched`` are configs of campaigns run elsewhere (the CLI, Toil)
    whose watch pages the endpoint serves too, at ``/watch/campaigns/<name>/``.
    """

    state: Path
    packages: tuple[Path, ...]
    data_roots: tuple[Path, ...] = ()
    allow_internal_urls: bool = False
    max_tiles: int = DEFAULT_MAX_TILES
    host: str = "127.0.0.1"
    port: int = 5000
    url: str | None = None
    container: str = "none"
    parallel: int = 2
    max_restarts: int = 3
    title: str = "ogc-upscaler"
    extra: dict[str, Any] = field(default_factory=dict)
    watched: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        if self.max_tiles < 1:
            raise InvalidConfig(f"max_tiles: must be 1 or more, got {self.max_tiles}", hint="e.g. --max-tiles 20000")

    @property
    def public_url(self) -> str:
        """The URL clients use (links in results point there)."""
        return (self.url or f"http://{self.host}:{self.port}").rstrip("/")


@dataclass(frozen=True)
class Found:
    """The packages to serve, by process id, and the ones refused, each with its reason."""

    packages: dict[str, Package]
    refused: tuple[tuple[str, str], ...] = ()

    def summary(self) -> str:
        """The process list's log line: what is served, and what was skipped and why."""
        served = ", ".join(self.packages) or "no package"
        line = f"serving {len(self.packages)} package process(es): {served}, and upscale"
        if self.refused:
            line += "; refused: " + "; ".join(f"{ref} ({reason})" for ref, reason in self.refused)
        return line


def find_packages(paths: tuple[Path, ...], container: str = "none") -> Found:
    """The packages in ``paths`` (CWL files, or folders of ``*/*.cwl``), by process id, checked: each
    top-level Workflow of a file is a process. A package that cannot be served is skipped with its reason
    (logged, and listed in :meth:`Found.summary`): one refused package never stops the server. Without a
    container engine, a package whose command is not on this machine's PATH is refused too."""
    from ogc_upscaler.backends.cwltool import tool_path

    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted({*path.glob("*.cwl"), *path.glob("*/*.cwl")})
        elif path.is_file():
            files.append(path)
        else:
            raise InvalidConfig(f"packages: {path} does not exist", hint="give CWL files or folders holding them")
    packages: dict[str, Package] = {}
    refused: list[tuple[str, str]] = []
    for file, loaded in zip(files, _load_all(files), strict=True):
        if isinstance(loaded, InvalidPackage):
            refused.append((file.name, loaded.message.split(": ", 1)[-1]))
            continue
        for package in loaded:
            reference = f"{file.name}#{package.workflow}"
            if '"ShellCommandRequirement"' in package.packed:
                refused.append(
                    (reference, "uses ShellCommandRequirement; the endpoint never passes inputs through a shell")
                )
            elif package.workflow == "upscale" or package.workflow in packages:
                refused.append((reference, f"process id {package.workflow!r} is taken"))
            elif problem := _cannot_run(package, container, tool_path()["PATH"]):
                refused.append((reference, problem))
            else:
                packages[package.workflow] = package
    for reference, reason in refused:
        log.warning("package %s is not served: %s", reference, reason)
    return Found(packages, tuple(refused))


def _cannot_run(package: Package, container: str, search_path: str) -> str | None:
    if container != "none":
        return None
    try:
        check_commands(package, search_path)
    except InvalidPackage as err:
        return err.message.split(": ", 1)[-1]
    return None


def _load_all(files: list[Path]) -> list[list[Package] | InvalidPackage]:
    """Every top-level Workflow of each file, loaded (in parallel processes when there are several files:
    loading is CPU-bound in cwltool; loaded packages are cached by content, so a restart is fast)."""
    if len(files) < 2:
        return [_load_file(f) for f in files]
    workers = min(len(files), os.cpu_count() or 1)
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(_load_file, files))


def _load_file(file: Path) -> list[Package] | InvalidPackage:
    try:
        return [load_package(f"{file}#{workflow}") for workflow in workflows(file)]
    except InvalidPackage as err:
        return err


def pygeoapi_config(settings: ServerSettings, packages: dict[str, Package]) -> dict[str, Any]:
    """The pygeoapi configuration for ``settings``."""
    state = settings.state.resolve()
    common = {
        "state": str(state),
        "url": settings.public_url,
        "data_roots": [str(r.resolve()) for r in settings.data_roots],
        "allow_internal_urls": settings.allow_internal_urls,
        "container": settings.container,
    }
    resources: dict[str, Any] = {
        process_id: {
            "type": "process",
            "processor": {"name": f"{PROCESSES}.PackageProcessor", "id": process_id, "package": p.entry, **common},
        }
        for process_id, p in packages.items()
    }
    resources["upscale"] = {
        "type": "process",
        "processor": {
            "name": f"{PROCESSES}.UpscaleProcessor",
            "packages": {process_id: p.entry for process_id, p in packages.items()},
            "parallel": settings.parallel,
            "max_tiles": settings.max_tiles,
            **common,
        },
    }
    contact = {"name": settings.title, "position": "operator", "email": "operator@example.org"}
    return {
        "server": {
            "bind": {"host": settings.host, "port": settings.port},
            "url": settings.public_url,
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "language": "en-US",
            "pretty_print": False,
            "limits": {"default_items": 50, "max_items": 1000},
            "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "attribution": "OpenStreetMap"},
            "manager": {
                "name": "ogc_upscaler.server.manager.UpscalerManager",
                "connection": str(state / "jobs.sqlite"),
                "output_dir": str(state / "outputs"),
                "max_restarts": settings.max_restarts,
            },
        },
        "logging": {"level": "WARNING"},
        "metadata": {
            "identification": {
                "title": settings.title,
                "description": "Application packages and whole upscaling campaigns as OGC API – Processes",
                "keywords": ["OGC API - Processes", "upscaling", "CWL"],
                "keywords_type": "theme",
                "terms_of_service": "https://creativecommons.org/licenses/by/4.0/",
                "url": settings.public_url,
            },
            "license": {"name": "CC-BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"},
            "provider": {"name": settings.title, "url": settings.public_url},
            "contact": contact,
        },
        "resources": resources,
        **settings.extra,
    }


def prepare(settings: ServerSettings) -> dict[str, str]:
    """Write the pygeoapi config and OpenAPI document into the state folder; the environment to serve them."""
    from pygeoapi.openapi import get_oas

    found = find_packages(settings.packages, settings.container)
    log.warning("%s", found.summary())
    packages = found.packages
    state = settings.state.resolve()
    for folder in (state, state / "jobs", state / "outputs"):
        folder.mkdir(parents=True, exist_ok=True)
    config = pygeoapi_config(settings, packages)
    _write(state / WATCHED, json.dumps(watched_stores(settings.watched), indent=2))
    config_path, openapi_path = state / "pygeoapi.yml", state / "openapi.yml"
    _write(config_path, yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    document = with_job_management(_openapi_3_0(get_oas(config)))
    _write(openapi_path, yaml.safe_dump(document, default_flow_style=False))
    return {"PYGEOAPI_CONFIG": str(config_path), "PYGEOAPI_OPENAPI": str(openapi_path)}


#: The campaigns the endpoint was told about, by name: their stores (``serve --watch CONFIG``).
WATCHED = "watched.json"


def watched_stores(configs: tuple[Path, ...]) -> dict[str, str]:
    """The store of each campaign config, by campaign name; two campaigns of one name are refused."""
    from ogc_upscaler.config import load_campaign

    stores: dict[str, str] = {}
    for config in configs:
        campaign = load_campaign(config)
        if campaign.name in stores:
            raise InvalidConfig(
                f"--watch {config}: a campaign named {campaign.name!r} is watched already",
                hint="give each watched campaign its own name",
            )
        stores[campaign.name] = str(campaign.store.resolve())
    return stores


def with_job_management(document: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document with the routes of OGC API – Processes Part 4 this endpoint adds (see
    :mod:`ogc_upscaler.server.job_management`) beside pygeoapi's."""
    job_id = {"name": "jobId", "in": "path", "required": True, "schema": {"type": "string"}}
    prefer = {
        "name": "Prefer",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": 'status="created" records the job without starting it (POST /jobs/{jobId}/results starts it)',
    }
    answers = {"default": {"$ref": "#/components/responses/default"}}
    ok = {"description": "a statusInfo document", "content": {"application/json": {"schema": {"type": "object"}}}}
    body = {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}
    operations = {
        "/jobs": {
            "post": {
                "summary": 'Create a job (started at once, or with Prefer: status="created" when started)',
                "operationId": "createJob",
                "tags": ["jobs"],
                "parameters": [prefer],
                "requestBody": body,
                "responses": {"201": ok, "400": {"description": "bad inputs: nothing recorded"}, **answers},
            }
        },
        "/jobs/{jobId}/results": {
            "post": {
                "summary": "Start a created job (a job started already is left as it is)",
                "operationId": "startJob",
                "tags": ["jobs"],
                "parameters": [job_id],
                "responses": {"200": ok, "404": {"description": "no such job"}, **answers},
            }
        },
        "/jobs/{jobId}/definition": {
            "get": {
                "summary": "The execute request a job was created from",
                "operationId": "getJobDefinition",
                "tags": ["jobs"],
                "parameters": [job_id],
                "responses": {"200": ok, "404": {"description": "no such job"}, **answers},
            }
        },
        "/jobs/{jobId}/log": {
            "get": {
                "summary": "The job's log (its package run's, else its worker's), as text",
                "operationId": "getJobLog",
                "tags": ["jobs"],
                "parameters": [job_id],
                "responses": {
                    "200": {"description": "the log", "content": {"text/plain": {"schema": {"type": "string"}}}},
                    "404": {"description": "no such job, or no log yet"},
                },
            }
        },
    }
    paths = document.setdefault("paths", {})
    for path, methods in operations.items():
        paths.setdefault(path, {}).update(methods)
    return document


def _openapi_3_0(document: Any) -> Any:
    """The document without the JSON Schema keywords OGC process descriptions add to OpenAPI 3.0's
    (``contentMediaType``, ``contentEncoding``), which OpenAPI 3.0 validators refuse."""
    if isinstance(document, dict):
        return {k: _openapi_3_0(v) for k, v in document.items() if k not in OGC_ONLY}
    if isinstance(document, list):
        return [_openapi_3_0(v) for v in document]
    return document


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
