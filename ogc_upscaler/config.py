"""The campaign configuration file (YAML), parsed once into typed objects.

:class:`ConfigFile` mirrors the file's syntax (pydantic, unknown keys refused);
:func:`load_campaign` turns it into a :class:`~ogc_upscaler.campaign.Campaign`
of real objects (an AOI, a grid, windows, parameter sets). Every mistake is an
:class:`~ogc_upscaler.errors.InvalidConfig` that names the file, the key and
what is expected.

A config::

    name: alps-ndvi
    aoi: alps.geojson            # a GeoJSON file, a bbox W,S,E,N, WKT, or inline GeoJSON
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
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import isodate
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ogc_upscaler.aoi import load_aoi
from ogc_upscaler.campaign import (
    Auth,
    Backend,
    Campaign,
    Inputs,
    KubernetesOptions,
    ParameterSet,
    Process,
    Retries,
    SlurmOptions,
    ToilSettings,
)
from ogc_upscaler.errors import InvalidConfig, UpscalerError
from ogc_upscaler.grid import GRID_HELP, custom_grid, grid_from_spec
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


class InputsConfig(_Strict):
    """STAC input discovery: a static catalog path or a STAC API URL, and optional collections."""

    stac: str
    collections: list[str] = Field(default_factory=list)


class SlurmConfig(_Strict):
    """What Toil passes to sbatch for each tile: partition, time limit, account, extra arguments."""

    partition: str | None = None
    time: str | None = Field(default=None, pattern=r"^(\d+-)?\d{1,2}(:\d{2}){0,2}$")
    account: str | None = None
    args: list[str] = Field(default_factory=list)


class KubernetesConfig(_Strict):
    """Where Toil's Kubernetes batch system runs tiles: namespace, an S3 job store, the appliance image."""

    namespace: str = "default"
    job_store: str | None = Field(default=None, pattern=r"^aws:[a-z0-9-]+:[a-z0-9-]+$")
    image: str | None = None
    service_account: str | None = None
    host_path: str | None = None


#: Tiles per batch on Kubernetes: 3 Toil jobs each keep Toil's job numbers within 4 digits.
K8S_BATCH_MAX = 2_000


class ToilConfig(_Strict):
    """The Toil backend: batch system, shared path (job stores, work, logs), tiles per leader."""

    batch_system: Literal["single_machine", "slurm", "kubernetes"] = "single_machine"
    shared: str | None = None
    batch_size: int = Field(default=50, ge=1, le=10_000)
    staging: Literal["shared", "jobstore"] | None = Field(
        default=None,
        description="how tiles reach the nodes: the shared path, or Toil's job store (default: jobstore on kubernetes)",
    )
    slurm: SlurmConfig = Field(default_factory=SlurmConfig)
    kubernetes: KubernetesConfig = Field(default_factory=KubernetesConfig)

    @model_validator(mode="after")
    def _store(self) -> ToilConfig:
        if self.batch_system == "kubernetes" and not self.kubernetes.job_store:
            raise ValueError("kubernetes needs kubernetes.job_store (aws:REGION:NAME): pods cannot reach a file store")
        if self.batch_system == "kubernetes" and self.staging == "shared":
            raise ValueError(
                "kubernetes needs staging: jobstore: Toil mounts no shared volume into the tile pods"
                " (remove staging, or set it to jobstore)"
            )
        if self.batch_system == "kubernetes" and self.batch_size > K8S_BATCH_MAX:
            raise ValueError(
                f"kubernetes takes at most {K8S_BATCH_MAX} tiles per batch: Toil's job names"
                " (owner, run id and job number) must fit Kubernetes' 63 characters"
            )
        return self


class BackendConfig(_Strict):
    """Where jobs run: cwltool here, or an OGC API – Processes endpoint (url + process)."""

    type: Literal["cwltool", "ogcapi", "toil"] = "cwltool"
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][-_.A-Za-z0-9]*$")
    parallel: int = Field(default=2, ge=1, le=1024)
    container: Literal["none", "docker", "podman", "singularity"] = "none"
    url: str | None = Field(default=None, pattern=r"^https?://")
    process: str | None = None
    requests_per_second: float | None = Field(default=None, gt=0)
    timeout: float = Field(default=60.0, gt=0)
    auth: Auth = Field(default_factory=Auth)
    inputs: dict[str, Any] | None = Field(
        default=None, description="this endpoint's execute inputs as templates over the job's: {job.NAME}"
    )
    toil: ToilConfig | None = None

    @model_validator(mode="after")
    def _endpoint(self) -> BackendConfig:
        if self.type == "ogcapi" and (not self.url or not self.process):
            raise ValueError("an ogcapi backend needs url and process")
        if self.toil is not None and self.type != "toil":
            raise ValueError("the toil section belongs to type: toil")
        if self.toil is not None and self.toil.batch_system == "kubernetes" and self.container != "none":
            raise ValueError(
                f"container: {self.container} cannot run inside Toil's unprivileged tile pods; on kubernetes"
                " each tile already runs in a pod of kubernetes.image: set container: none and install the"
                " package's tool in that image"
            )
        return self


class RetryConfig(_Strict):
    """Attempts, back-off and the time limit of one attempt (seconds or ISO 8601 durations)."""

    attempts: int = Field(default=3, ge=1, le=100)
    backoff: float | str = 10.0
    max_backoff: float | str = 600.0
    time_limit: float | str = 6 * 3600.0

    @field_validator("backoff", "max_backoff", "time_limit")
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
    backend: BackendConfig | list[BackendConfig] = Field(default_factory=BackendConfig)
    retries: RetryConfig = Field(default_factory=RetryConfig)
    store: str | None = None
    workdir: str | None = None
    output: str | None = None


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
    inputs = None
    if parsed.inputs is not None:
        inputs = Inputs(parsed.inputs.stac, tuple(parsed.inputs.collections), base)
    r = parsed.retries
    return Campaign(
        name=name,
        aoi=aoi,
        grid=grid,
        windows=_windows(parsed.time),
        parameter_sets=_parameter_sets(parsed.parameters),
        process=Process(application=application, inputs=parsed.process.inputs),
        store=base / (parsed.store or f"{name}.sqlite"),
        inputs=inputs,
        backends=_backends(parsed.backend, base, base / (parsed.workdir or f"{name}-runs")),
        retries=Retries(r.attempts, float(r.backoff), float(r.max_backoff), float(r.time_limit)),
        workdir=base / (parsed.workdir or f"{name}-runs"),
        output=base / (parsed.output or f"{name}-catalog"),
    )


def _backends(given: BackendConfig | list[BackendConfig], base: Path, workdir: Path) -> tuple[Backend, ...]:
    if isinstance(given, BackendConfig):
        return (_backend(given, toil=_toil(given, base, workdir)),)
    if not given:
        raise InvalidConfig("backend: the list is empty", hint="give one backend, or a list of ogcapi endpoints")
    if any(b.type != "ogcapi" for b in given):
        raise InvalidConfig(
            "backend: a list of backends may only hold ogcapi endpoints",
            hint="several endpoints share one campaign; a local cwltool backend stands alone",
        )
    named = [b.name or f"ogcapi-{i + 1}" for i, b in enumerate(given)]
    if len(set(named)) != len(named):
        raise InvalidConfig(f"backend: names repeat ({', '.join(named)})", hint="give each endpoint its own name")
    return tuple(_backend(b, name) for b, name in zip(given, named, strict=True))


def _toil(b: BackendConfig, base: Path, workdir: Path) -> ToilSettings | None:
    if b.type != "toil":
        return None
    t = b.toil or ToilConfig()
    shared = base / t.shared if t.shared else workdir / "toil"
    return ToilSettings(
        t.batch_system,
        shared.resolve(),
        t.batch_size,
        b.container,
        t.staging or ("jobstore" if t.batch_system == "kubernetes" else "shared"),
        SlurmOptions(t.slurm.partition, t.slurm.time, t.slurm.account, tuple(t.slurm.args)),
        KubernetesOptions(**t.kubernetes.model_dump()),
    )


def _backend(b: BackendConfig, name: str | None = None, toil: ToilSettings | None = None) -> Backend:
    return Backend(
        b.type,
        b.parallel,
        b.container,
        b.url,
        b.process,
        b.requests_per_second,
        b.timeout,
        Auth(**b.auth.model_dump()),
        name or b.name,
        b.inputs,
        toil,
    )


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
        raw = yaml.safe_load(text)
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


_SECTIONS: dict[str, type[BaseModel]] = {
    "time": TimeConfig,
    "process": ProcessConfig,
    "grid": CustomGridConfig,
    "inputs": InputsConfig,
    "backend": BackendConfig,
    "auth": Auth,
    "retries": RetryConfig,
}
_TYPE_TAGS = {"str", "int", "float", "bool", "date", "datetime", "dict", "list", "tuple", "none"}


def _config_error(path: Path, err: ValidationError) -> InvalidConfig:
    errors = err.errors()
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    parts = [str(p) for p in first["loc"] if not _is_type_tag(str(p))]
    loc = ".".join(parts)
    kind = first["type"]
    model = _SECTIONS.get(parts[0], ConfigFile) if len(parts) > 1 else ConfigFile
    if kind == "extra_forbidden":
        message = f"unknown key {loc!r}"
        hint = f"the keys there are: {', '.join(model.model_fields)} (check the spelling)"
    elif kind == "missing":
        message = f"missing key {loc!r}"
        hint = "see the example config in the README"
    else:
        message = f"{loc or 'config'}: {first['msg']} (got {first.get('input')!r})"
        hint = "see the example config in the README"
    return InvalidConfig(f"config {path}: {message}", hint=hint)


def _is_type_tag(part: str) -> bool:
    return (
        part.lower() in _TYPE_TAGS
        or "[" in part
        or part.startswith(("function-", "union"))
        or part in {m.__name__ for m in _SECTIONS.values()}
    )
