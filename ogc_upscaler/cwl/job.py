"""One job's input file: the campaign's (or a request's) values checked against the package's types and
written as cwltool's ``job.yml``, the STAC items of Directory inputs left to the run's stage-in step."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ogc_upscaler.cwl.package import Package, Parameter
from ogc_upscaler.cwl.types import CwlType, TypeMismatch
from ogc_upscaler.errors import InvalidPackage
from ogc_upscaler.stage import StageError, stage_items


@dataclass(frozen=True)
class JobFile:
    """One run's ``job.yml`` and the Directory inputs it gives as STAC item hrefs, which the run's
    stage-in steps stage (see :mod:`~ogc_upscaler.cwl.wrap`)."""

    path: Path
    staged: frozenset[str] = frozenset()
    #: The values written, in their CWL types (the staged inputs' as item hrefs).
    values: Mapping[str, Any] = field(default_factory=dict)


def write_job_file(package: Package, values: dict[str, Any], folder: Path, *, carry_assets: bool = False) -> JobFile:
    """Write ``folder/job.yml`` for one run, converting each value to its CWL type.

    A ``Directory`` input given STAC item hrefs (one, or a list) is written as the list of hrefs, and
    a ``Directory[]`` as one list per element: the run's stage-in step stages them (into a Directory
    named after the input, with a ``catalog.json``). A local folder is passed as it is. A Directory
    deeper in an input (a record's field) given item hrefs is staged here, into
    ``folder/stage/<input>/``, its local assets carried inside with ``carry_assets``. Inputs left out
    take their defaults.
    """
    check_names(package, values)
    job: dict[str, Any] = {}
    staged: set[str] = set()
    for parameter in package.inputs:
        if parameter.id in values:
            value = values[parameter.id]
            hrefs = _item_hrefs(parameter, value)
            if hrefs is not None:
                job[parameter.id] = hrefs
                staged.add(parameter.id)
            else:
                stage = _Stager(folder / "stage" / parameter.id, carry_assets)
                job[parameter.id] = _checked(package, parameter, value, stage)
    path = folder / "job.yml"
    path.write_text(yaml.safe_dump(job, sort_keys=False))
    return JobFile(path, frozenset(staged), job)


def check_values(package: Package, values: dict[str, Any], job_id: str | None = None) -> dict[str, Any]:
    """Check one job's input values against the package without writing anything (naming the job, if given);
    returns them in their CWL types."""
    try:
        check_names(package, values)
        return {p.id: _checked(package, p, values[p.id], None) for p in package.inputs if p.id in values}
    except InvalidPackage as err:
        if job_id is None:
            raise
        raise InvalidPackage(f"job {job_id}: {err.message}", hint=err.hint) from None


def check_names(package: Package, names: Iterable[str]) -> None:
    """Check that ``names`` are the package's inputs: every required one, no unknown one."""
    names = set(names)
    missing = [p.id for p in package.inputs if p.required and p.id not in names]
    unknown = sorted(names - {p.id for p in package.inputs})
    if missing or unknown:
        problems = [
            f"missing {', '.join(missing)}" if missing else "",
            f"unknown {', '.join(unknown)}" if unknown else "",
        ]
        raise InvalidPackage(
            f"package {package.path.name}: process.inputs do not match the package: "
            + "; ".join(p for p in problems if p),
            hint=f"the package's inputs are: {describe_inputs(package)}",
        )


def describe_inputs(package: Package) -> str:
    """The inputs as ``id (type)``, the optional ones marked with their default."""
    parts = []
    for p in package.inputs:
        if p.has_default:
            parts.append(f"{p.id} ({p.type.text}, default {p.default!r})")
        else:
            parts.append(f"{p.id} ({p.type.text})")
    return ", ".join(parts)


def _item_hrefs(parameter: Parameter, value: Any) -> list[Any] | None:
    """The item hrefs a top-level ``Directory`` (a list) or ``Directory[]`` (a list per element) input is
    given, for its stage-in step; None when it is given folders or Directory objects, passed as they are."""
    kind = parameter.type
    if kind.is_("Directory"):
        return _hrefs(value)
    if kind.array_of("Directory") and isinstance(value, list) and any(_hrefs(v) is not None for v in value):
        return [_hrefs(v) or [_location(v)] for v in value]  # folders too: stage-in takes one
    return None


def _hrefs(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return None if Path(value).is_dir() else [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _location(value: Any) -> Any:
    return value.get("location", value.get("path")) if isinstance(value, dict) else value


class _Stager:
    """Turns the value of one ``File`` or ``Directory`` (at any depth of an input) into CWL's object."""

    def __init__(self, folder: Path, carry_assets: bool) -> None:
        self.folder = folder
        self.carry_assets = carry_assets

    def __call__(self, kind: CwlType, value: Any, where: str) -> Any:
        if isinstance(value, dict) and value.get("class") in {"File", "Directory"}:
            return value
        if kind.kind == "File":
            if not isinstance(value, str):
                raise TypeMismatch(f"{where} takes a File (a path or URL), got {value!r}")
            return {"class": "File", "location": value}
        hrefs = value if isinstance(value, list) else [value]
        if not all(isinstance(h, str) for h in hrefs):
            raise TypeMismatch(f"{where} takes a Directory: a folder, or STAC item hrefs; got {value!r}")
        if isinstance(value, str) and Path(value).is_dir():
            return {"class": "Directory", "location": value}
        folder = self.folder.joinpath(*re.findall(r"\[(\d+)\]", where))
        try:
            staged = stage_items(hrefs, folder, carry_assets=self.carry_assets)
        except StageError as err:
            raise TypeMismatch(f"{where}: {err}") from None
        return {"class": "Directory", "location": str(staged)}


def _checked(package: Package, parameter: Parameter, value: Any, stage: _Stager | None) -> Any:
    try:
        return parameter.type.check(value, f"input {parameter.id!r}", stage)
    except TypeMismatch as err:
        raise InvalidPackage(f"package {package.path.name}: {err}", hint="fix its value under process.inputs") from None
