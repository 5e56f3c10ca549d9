"""One job's input file: the campaign's (or a request's) values checked against the package's types and
written as cwltool's ``job.yml``, with STAC items staged into Directories as a platform's stage-in does."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pystac
import yaml

from ogc_upscaler.assets import Carried, carry_item_assets
from ogc_upscaler.cwl.package import Package, Parameter
from ogc_upscaler.cwl.types import CwlType, TypeMismatch
from ogc_upscaler.errors import InvalidPackage


def write_job_file(package: Package, values: dict[str, Any], folder: Path, *, carry_assets: bool = False) -> Path:
    """Write ``folder/job.yml`` for one run, converting each value to its CWL type.

    A ``Directory`` given a list of STAC item hrefs is staged: the items are copied into
    ``folder/stage/<input>/`` with a ``catalog.json`` listing them; each element of a ``Directory[]``
    given item hrefs (one href, or a list) gets its own ``stage/<input>/<n>/``. A local folder is
    passed as it is. Local assets keep absolute hrefs, or with ``carry_assets`` (a run in a container
    sees only the Directory) are carried inside it. Inputs left out take their defaults.
    """
    check_names(package, values)
    job: dict[str, Any] = {}
    for parameter in package.inputs:
        if parameter.id in values:
            stage = _Stager(folder / "stage" / parameter.id, carry_assets)
            job[parameter.id] = _checked(package, parameter, values[parameter.id], stage)
    path = folder / "job.yml"
    path.write_text(yaml.safe_dump(job, sort_keys=False))
    return path


def check_values(package: Package, values: dict[str, Any], job_id: str | None = None) -> None:
    """Check one job's input values against the package without writing anything (naming the job, if given)."""
    try:
        check_names(package, values)
        for parameter in package.inputs:
            if parameter.id in values:
                _checked(package, parameter, values[parameter.id], None)
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


def stage_items(hrefs: list[str], folder: Path, *, carry_assets: bool = False) -> Path:
    """Copy STAC items into ``folder`` with a ``catalog.json`` listing them. Local assets stay
    absolute, or with ``carry_assets`` are hard-linked (else copied) into ``folder/assets/``."""
    folder.mkdir(parents=True, exist_ok=True)
    catalog = pystac.Catalog(id="inputs", description="STAC items staged for one job")
    for href in hrefs:
        item = pystac.Item.from_file(href)
        item.make_asset_hrefs_absolute()
        catalog.add_item(item.clone())
    catalog.normalize_hrefs(str(folder))
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    if carry_assets:
        carried = Carried(folder)
        for item in catalog.get_items():
            carry_item_assets(Path(item.get_self_href()), carried)
    return folder


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
        staged = stage_items(hrefs, folder, carry_assets=self.carry_assets)
        return {"class": "Directory", "location": str(staged)}


def _checked(package: Package, parameter: Parameter, value: Any, stage: _Stager | None) -> Any:
    try:
        return parameter.type.check(value, f"input {parameter.id!r}", stage)
    except TypeMismatch as err:
        raise InvalidPackage(f"package {package.path.name}: {err}", hint="fix its value under process.inputs") from None
