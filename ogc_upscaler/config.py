"""The campaign configuration file (YAML), parsed once into typed objects.

:class:`ConfigFile` mirrors the file's syntax (pydantic, unknown keys refused);
:func:`load_campaign` turns it into a :class:`~ogc_upscaler.campaign.Campaign`
of real objects (an AOI, a grid, windows, parameter sets). Every mistake is an
:class:`~ogc_upscaler.errors.InvalidConfig` that names the file, the key and
what is expected.

A config::

    name: alps-ndvi
    aoi: alps.geojson            # a vector file, a bbox W,S,E,N, WKT, inline GeoJSON, or {file, layer, where}
    grid: utm-20km               # a named grid, EPSG:CODE:SIZE[:OX,OY], or a grid file
    resolution: 10               # pixel size in metres
    buffer: 8                    # pixels around each tile
    time: {start: 2024-01-01, end: 2025-01-01, step: P1M}
    parameters:                  # optional named parameter sets
      strict: {threshold: 0.4}
      loose: {threshold: 0.2}
    process:
      application: app_packages/ndvi/ndvi.cwl
      inputs: {bbox: "{tile.bbox}", epsg: "{tile.epsg}", start: "{window.start}"}
    store: alps-ndvi.sqlite      # relative to this file
"""

from __future__ import annotations

import hashlib
import json
import typing
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import isodate
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ogc_upscaler.aoi import load_aoi
from ogc_upscaler.backends import registry
from ogc_upscaler.backends.base import BackendSettings
from ogc_upscaler.bucket import S3Output
from ogc_upscaler.campaign import Campaign, Inputs, ParameterSet, Process, Retries
from ogc_upscaler.errors import InvalidConfig, UpscalerError, redact
from ogc_upscaler.grid import GRID_HELP, custom_grid, grid_from_spec
from ogc_upscaler.s3_access import S3Access
from ogc_upscaler.stac_api import Publication
from ogc_upscaler.windows import Window, parse_instant, windows_from_range


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WindowConfig(_Strict):
    """One explicit time window."""

    start: date | datetime | str
    end: date | datetime | str


class TimeConfig(_Strict):
    """A time range with a step, or a list of windows."""

    start: date | datetime | str | None = None
    end: date | datetime | str | None = None
    step: str | None = Field(default=None, description="ISO 8601 duration, e.g. P1M")
    windows: list[WindowConfig] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> TimeConfig:
        ranged = [self.start, self.end, self.step]
        if self.windows is not None:
            if any(v is not None for v in ranged):
                raise ValueError("give either start/end/step or windows, not both")
            if not self.windows:
                raise ValueError("windows is empty; give at least one {start, end}")
        elif any(v is None for v in ranged):
            missing = [k for k, v in zip(("start", "end", "step"), ranged, strict=True) if v is None]
            raise ValueError(f"missing {', '.join(missing)}: give start, end and step (e.g. P1M), or windows")
        return self


class CustomGridConfig(_Strict):
    """A custom grid in any projected CRS."""

    crs: str | int = Field(description="EPSG code, e.g. 'EPSG:32633' or 32633")
    tile_size: float = Field(gt=0, description="tile edge in metres")
    origin: tuple[float, float] = (0.0, 0.0)

    @field_validator("crs")
    @classmethod
    def _epsg(cls, value: str | int) -> str | int:
        text = str(value).upper().removeprefix("EPSG:")
        if not text.isdigit():
            raise ValueError("expected an EPSG code such as 'EPSG:32633'")
        return value

    @property
    def epsg(self) -> int:
        """The EPSG code as an integer."""
        return int(str(self.crs).upper().removeprefix("EPSG:"))


class ProcessConfig(_Strict):
    """What each job runs, and the inputs it gets (templates rendered per job)."""

    application: str | None = Field(default=None, description="CWL application package or process reference")
    inputs: dict[str, Any] = Field(default_factory=dict)


class S3AccessConfig(_Strict):
    """How an S3 store is reached: an S3-compatible store's endpoint, the region, a profile."""

    endpoint_url: str | None = Field(default=None, pattern=r"^https?://", description="an S3-compatible endpoint")
    region: str | None = None
    profile: str | None = Field(default=None, description="a profile of the shared AWS credentials file")

    def access(self) -> S3Access:
        """These settings, resolved."""
        return S3Access(self.endpoint_url, self.region, self.profile)


class InputsConfig(_Strict):
    """STAC input discovery: a static catalog (a path, URL or ``s3://``) or a STAC API URL, optional
    collections, and how ``s3://`` catalogs, items and assets are reached (default: as the output's bucket)."""

    stac: str
    collections: list[str] = Field(default_factory=list)
    s3: S3AccessConfig | None = None


class RetryConfig(_Strict):
    """Attempts, back-off, the limits of one attempt (seconds or ISO 8601 durations), what to do with
    submissions in doubt, and how memory grows after an attempt ran out of it."""

    attempts: int = Field(default=3, ge=1, le=100)
    backoff: float | str = 10.0
    max_backoff: float | str = 600.0
    time_limit: float | str = Field(default=6 * 3600.0, description="running time of one attempt")
    queue_limit: float | str = Field(default=2 * 86400.0, description="time one attempt may wait in a queue")
    on_doubt: Literal["wait", "resubmit", "fail"] = "wait"
    oom_factor: float = Field(default=1.5, ge=1.0, le=16.0)

    @field_validator("backoff", "max_backoff", "time_limit", "queue_limit")
    @classmethod
    def _seconds(cls, value: float | str) -> float:
        if isinstance(value, int | float):
            if value < 0:
                raise ValueError("expected a duration >= 0")
            return float(value)
        try:
            return isodate.parse_duration(value).total_seconds()
        except (isodate.ISO8601Error, ValueError, AttributeError):
            raise ValueError("expected seconds or an ISO 8601 duration such as PT30S or PT2H") from None


class OutputConfig(S3AccessConfig):
    """``output:`` as a mapping: a bucket and how to reach it."""

    url: str = Field(description="s3://bucket/prefix")


class PublishAuthConfig(_Strict):
    """``publish.auth``: how we prove who we are to the STAC API."""

    token_env: str = Field(description="the environment variable holding a Bearer token")


class PublishConfig(_Strict):
    """``publish:``: the STAC API (with the Transactions extension) items are published to."""

    stac_api: str = Field(pattern=r"^https?://", description="the API's root URL")
    collection: str | None = Field(default=None, description="the collection's id; default the campaign's name")
    auth: PublishAuthConfig | None = None


class ConfigFile(_Strict):
    """The campaign config file, as written."""

    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][-_.A-Za-z0-9]*$")
    aoi: str | dict[str, Any]
    grid: str | CustomGridConfig
    resolution: float | None = Field(default=None, gt=0)
    buffer: int = Field(default=0, ge=0)
    time: TimeConfig
    parameters: dict[str, dict[str, Any]] | list[dict[str, Any]] | None = None
    process: ProcessConfig = Field(default_factory=ProcessConfig)
    inputs: InputsConfig | None = None
    backend: dict[str, Any] | list[dict[str, Any]] = Field(
        default_factory=dict, description="a backend's settings (by its type), or a list of them"
    )
    retries: RetryConfig = Field(default_factory=RetryConfig)
    store: str | None = None
    workdir: str | None = None
    output: str | OutputConfig | None = None
    publish: PublishConfig | None = None
    priority: str | None = Field(default=None, description="a numeric tile attribute: tiles run highest first")


def load_campaign(path: str | Path) -> Campaign:
    """Read, check and resolve a campaign config file."""
    path = Path(path)
    raw = _read_yaml(path)
    try:
        parsed = ConfigFile.model_validate(raw)
    except ValidationError as err:
        raise _config_error(path, err) from None
    try:
        return resolve(parsed, path)
    except InvalidConfig as err:
        raise InvalidConfig(f"config {path}: {err.message}", hint=err.hint) from None


def resolve(parsed: ConfigFile, path: Path) -> Campaign:
    """Turn a parsed config into a campaign: load the AOI, build the grid and the windows."""
    base = path.parent.resolve()  # absolute: job folders are entered by processes with other cwds
    name = parsed.name or path.stem
    try:
        aoi = load_aoi(parsed.aoi, base_dir=base)
    except UpscalerError as err:
        raise type(err)(f"config {path}: aoi: {err.message}", hint=err.hint) from None
    try:
        if isinstance(parsed.grid, CustomGridConfig):
            grid = custom_grid(
                parsed.grid.epsg, parsed.grid.tile_size, parsed.resolution or 10.0, parsed.grid.origin, parsed.buffer
            )
        else:
            grid = grid_from_spec(parsed.grid, resolution=parsed.resolution, buffer_px=parsed.buffer, base_dir=base)
    except UpscalerError as err:
        hint = err.hint or f"grid takes {GRID_HELP}"
        raise type(err)(f"config {path}: grid: {err.message}", hint=hint) from None
    application = parsed.process.application
    if application is not None and not application.startswith(("http://", "https://")):
        path_part, _, fragment = application.partition("#")
        application = str((base / path_part).resolve()) + (f"#{fragment}" if fragment else "")
    r = parsed.retries
    workdir = base / (parsed.workdir or f"{name}-runs")
    output, upload = _output(parsed.output, base, name)
    inputs = None
    if parsed.inputs is not None:
        given = parsed.inputs.s3
        s3 = given.access() if given is not None else (upload.access if upload is not None else None)
        inputs = Inputs(parsed.inputs.stac, tuple(parsed.inputs.collections), base, s3)
    return Campaign(
        name=name,
        aoi=aoi,
        grid=grid,
        windows=_windows(parsed.time),
        parameter_sets=_parameter_sets(parsed.parameters),
        process=Process(application=application, inputs=parsed.process.inputs),
        store=base / (parsed.store or f"{name}.sqlite"),
        inputs=inputs,
        backends=tuple(b.resolve(base, workdir) for b in _backends(parsed.backend)),
        retries=Retries(
            r.attempts,
            float(r.backoff),
            float(r.max_backoff),
            float(r.time_limit),
            float(r.queue_limit),
            r.on_doubt,
            r.oom_factor,
        ),
        workdir=workdir,
        output=output,
        upload=upload,
        publish=_publication(parsed.publish, name),
        priority=parsed.priority,
    )


def _publication(given: PublishConfig | None, name: str) -> Publication | None:
    if given is None:
        return None
    token_env = given.auth.token_env if given.auth is not None else None
    return Publication(given.stac_api, given.collection or name, token_env)


def _output(given: str | OutputConfig | None, base: Path, name: str) -> tuple[Path, S3Output | None]:
    """The local catalog folder, and the bucket it is mirrored to (an ``s3://`` output: the local folder is
    then the default one, the working copy)."""
    if given is None or (isinstance(given, str) and "://" not in given):
        return base / (given or f"{name}-catalog"), None
    url = given if isinstance(given, str) else given.url
    if not url.startswith("s3://"):
        raise InvalidConfig(
            f"output: {redact(url)} is neither a folder nor an s3:// location",
            hint="give a folder or s3://bucket/prefix",
        )
    settings = OutputConfig(url=url) if isinstance(given, str) else given
    try:
        access = settings.access()
        upload = S3Output(settings.url, access.endpoint_url, access.region, access.profile)
    except UpscalerError as err:
        raise InvalidConfig(f"output: {err.message}", hint=err.hint) from None
    return base / f"{name}-catalog", upload


def _backends(given: dict[str, Any] | list[dict[str, Any]]) -> tuple[BackendSettings, ...]:
    """The backend sections, each parsed by the settings of its type (see :mod:`ogc_upscaler.backends.registry`)."""
    if isinstance(given, dict):
        return (_backend(given, "backend"),)
    if not given:
        raise InvalidConfig("backend: the list is empty", hint="give one backend, or a list of endpoints")
    parsed = [_backend(b, f"backend[{i}]") for i, b in enumerate(given)]
    named = [b.name or f"{b.type}-{i + 1}" for i, b in enumerate(parsed)]
    if len(set(named)) != len(named):
        raise InvalidConfig(f"backend: names repeat ({', '.join(named)})", hint="give each backend its own name")
    return tuple(b.model_copy(update={"name": n}) for b, n in zip(parsed, named, strict=True))


def _backend(section: dict[str, Any], where: str) -> BackendSettings:
    try:
        return registry.parse(section)
    except ValidationError as err:
        raise _section_error(where, err, registry.types()[section.get("type", registry.DEFAULT)]) from None
    except InvalidConfig as err:
        raise InvalidConfig(err.message.replace("backend", where, 1), hint=err.hint) from None


def _windows(time: TimeConfig) -> tuple[Window, ...]:
    if time.windows is None:
        assert time.start is not None and time.end is not None and time.step is not None
        return tuple(windows_from_range(time.start, time.end, time.step))
    out = []
    for i, w in enumerate(time.windows):
        start, end = parse_instant(w.start, f"time.windows[{i}].start"), parse_instant(w.end, f"time.windows[{i}].end")
        if end <= start:
            raise InvalidConfig(f"time.windows[{i}]: end must come after start", hint="swap start and end")
        out.append(Window(start, end))
    if len(set(out)) != len(out):
        raise InvalidConfig("time.windows: a window is listed twice", hint="list each window once")
    return tuple(out)


def _parameter_sets(parameters: dict[str, dict[str, Any]] | list[dict[str, Any]] | None) -> tuple[ParameterSet, ...]:
    if parameters is None:
        return ()
    if isinstance(parameters, list):
        named = {f"p{hashlib.sha256(json.dumps(p, sort_keys=True).encode()).hexdigest()[:8]}": p for p in parameters}
        if len(named) != len(parameters):
            raise InvalidConfig("parameters: a parameter set is listed twice", hint="list each parameter set once")
        parameters = named
    for key in parameters:
        if not key.replace("-", "").replace("_", "").isalnum():
            raise InvalidConfig(
                f"parameters.{key!r}: names take letters, digits, '-' and '_' only",
                hint="parameter set names become part of job ids; rename it, e.g. strict or loose",
            )
    return tuple(ParameterSet(k, v) for k, v in parameters.items())


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidConfig(f"config {path}: no such file", hint="give the path of a campaign YAML file") from None
    except (IsADirectoryError, UnicodeDecodeError):
        raise InvalidConfig(
            f"config {path}: not a YAML text file", hint="give the path of a campaign YAML file"
        ) from None
    try:
        raw = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise InvalidConfig(
            f"config {path}: not valid YAML{where}: {problem}",
            hint="fix the YAML syntax there (indentation, brackets, quotes)",
        ) from None
    if not isinstance(raw, dict):
        raise InvalidConfig(
            f"config {path}: expected a mapping of keys (aoi, grid, time, ...), got {type(raw).__name__}",
            hint="see the example config in the README",
        )
    return raw


class _Loader(yaml.SafeLoader):
    """YAML's safe loader, keeping a date that is no real date (``2024-13-01``) as text, so the key that
    holds it is named in the error instead of the loader failing with a bare ValueError."""


def _timestamp(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError:
        return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)

_TYPE_TAGS = {"str", "int", "float", "bool", "date", "datetime", "dict", "list", "tuple", "none", "literal"}


def _config_error(path: Path, err: ValidationError) -> InvalidConfig:
    message, hint = _explain(err, ConfigFile, ())
    return InvalidConfig(f"config {path}: {message}", hint=hint)


def _section_error(where: str, err: ValidationError, model: type[BaseModel]) -> InvalidConfig:
    message, hint = _explain(err, model, (where,))
    return InvalidConfig(message, hint=hint)


def _explain(err: ValidationError, root: type[BaseModel], prefix: tuple[str, ...]) -> tuple[str, str]:
    """The first problem pydantic found, as a message naming the key, and a hint listing the keys there."""
    errors = err.errors()
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    parts = [str(p) for p in first["loc"] if not _is_type_tag(str(p))]
    loc = ".".join((*prefix, *parts))
    kind = first["type"]
    if kind == "extra_forbidden":
        model = _model_at(root, parts[:-1])
        return f"unknown key {loc!r}", f"the keys there are: {', '.join(model.model_fields)} (check the spelling)"
    if kind == "missing":
        return f"missing key {loc!r}", "see the example config in the README"
    return f"{loc or 'config'}: {first['msg']} (got {first.get('input')!r})", "see the example config in the README"


def _model_at(root: type[BaseModel], parts: list[str]) -> type[BaseModel]:
    """The model of the section at ``parts`` below ``root`` (the innermost one the path reaches)."""
    model = root
    for part in parts:
        field = model.model_fields.get(part)
        inner = _models_in(field.annotation) if field is not None else []
        if not inner:
            break
        model = inner[0]
    return model


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _is_type_tag(part: str) -> bool:
    return (
        part.lower() in _TYPE_TAGS
        or "[" in part
        or part.startswith(("function-", "union"))
        or part[:1].isupper()  # a model's name in a union's location
    )
