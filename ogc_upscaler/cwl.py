"""CWL application packages: loading and checking them, listing their inputs and outputs,
and writing the input file of one job (staging its STAC items into a Directory).

A package is checked against the OGC EO Application Package best practice as
far as running it here depends on it (one entry Workflow, DockerRequirement
under ``hints`` only, no JavaScript, no EnvVarRequirement that resets PATH), and
then by cwltool's own validation.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pystac
import yaml

from ogc_upscaler.assets import Carried, carry_item_assets
from ogc_upscaler.errors import InvalidPackage

JS_MARKERS = ("${", "InlineJavascriptRequirement")
SCALARS = {"string": str, "int": int, "long": int, "float": float, "double": float, "boolean": bool}


@dataclass(frozen=True)
class Parameter:
    """One input or output of a package: id, CWL type (as text), label, doc, whether required."""

    id: str
    type: str
    label: str = ""
    doc: str = ""
    required: bool = True


@dataclass(frozen=True)
class Package:
    """A loaded application package: the file, its entry Workflow, its inputs and outputs."""

    path: Path
    workflow: str
    label: str
    doc: str
    version: str | None
    inputs: tuple[Parameter, ...]
    outputs: tuple[Parameter, ...]
    temporary_fail_codes: frozenset[int] = frozenset()
    cores: float = 1.0
    ram_mib: int = 1024

    @property
    def entry(self) -> str:
        """``path#workflow``, as cwltool and Toil take it."""
        return f"{self.path}#{self.workflow}"

    def input(self, name: str) -> Parameter:
        """The input called ``name``."""
        for parameter in self.inputs:
            if parameter.id == name:
                return parameter
        raise KeyError(name)


def load_package(reference: str | Path, *, validate: bool = True) -> Package:
    """Load and check the package at ``path[#workflow]``; :class:`InvalidPackage` says what is wrong."""
    path_text, _, wanted = str(reference).partition("#")
    path = Path(path_text)
    where = f"package {path}"
    document = _read(path, where)
    workflow = _entry_workflow(document, wanted, where)
    _check_portability(document, path, where)
    if validate:
        _cwltool_validate(path, where)
    return Package(
        path=path.resolve(),
        workflow=workflow["id"].lstrip("#"),
        label=str(workflow.get("label", "")),
        doc=str(workflow.get("doc", "")).strip(),
        version=document.get("s:softwareVersion"),
        inputs=tuple(_parameters(workflow.get("inputs", {}))),
        outputs=tuple(_parameters(workflow.get("outputs", {}))),
        temporary_fail_codes=frozenset(
            int(code)
            for node in document.get("$graph", [document])
            if isinstance(node, dict)
            for code in node.get("temporaryFailCodes", [])
        ),
        cores=_resource(document, "coresMin", 1.0),
        ram_mib=int(_resource(document, "ramMin", 1024.0)),
    )


def _resource(document: dict[str, Any], key: str, default: float) -> float:
    """The largest numeric ``ResourceRequirement.key`` of any node (requirements or hints), else ``default``."""
    values = [
        float(value)
        for node in document.get("$graph", [document])
        if isinstance(node, dict)
        for section in ("requirements", "hints")
        if isinstance(value := _requirements(node.get(section)).get("ResourceRequirement", {}).get(key), int | float)
    ]
    return max(values, default=default)


def write_job_file(package: Package, values: dict[str, Any], folder: Path, *, carry_assets: bool = False) -> Path:
    """Write ``folder/job.yml`` for one run, converting each value to its CWL type.

    A ``Directory`` input given a list of STAC item hrefs is staged: the items are
    copied into ``folder/stage/<input>/`` with a ``catalog.json`` listing them, as the
    best practice's stage-in would. Their local assets keep absolute hrefs, or with
    ``carry_assets`` (a run in a container sees only the Directory) are carried inside it.
    """
    job: dict[str, Any] = {}
    for parameter in package.inputs:
        if parameter.id not in values:
            if parameter.required:
                raise InvalidPackage(
                    f"package {package.path.name}: input {parameter.id!r} ({parameter.type}) has no value",
                    hint=f"add it under process.inputs in the config; the inputs are: {_names(package.inputs)}",
                )
            continue
        job[parameter.id] = _value(parameter, values[parameter.id], folder, package, carry_assets)
    unknown = sorted(set(values) - {p.id for p in package.inputs})
    if unknown:
        raise InvalidPackage(
            f"package {package.path.name}: no input called {', '.join(map(repr, unknown))}",
            hint=f"the inputs are: {_names(package.inputs)}",
        )
    path = folder / "job.yml"
    path.write_text(yaml.safe_dump(job, sort_keys=False))
    return path


def check_values(package: Package, values: dict[str, Any], job_id: str | None = None) -> None:
    """Check one job's input values against the package without writing anything (naming the job, if given)."""
    try:
        check_names(package, values)
        for parameter in package.inputs:
            if parameter.id in values:
                _scalar_check(parameter, values[parameter.id], package)
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
            hint=f"the package's inputs are: {_names(package.inputs)}",
        )


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


def _value(parameter: Parameter, value: Any, folder: Path, package: Package, carry_assets: bool) -> Any:
    kind = parameter.type.rstrip("?")
    if kind == "Directory":
        if isinstance(value, list):
            staged = stage_items(value, folder / "stage" / parameter.id, carry_assets=carry_assets)
            return {"class": "Directory", "location": str(staged)}
        return {"class": "Directory", "location": str(value)}
    if kind == "File":
        return {"class": "File", "location": str(value)}
    if kind == "string[]" and isinstance(value, list):
        return [str(v) for v in value]
    _scalar_check(parameter, value, package)
    return SCALARS[kind](value) if kind in SCALARS else value


def _scalar_check(parameter: Parameter, value: Any, package: Package) -> None:
    kind = parameter.type.rstrip("?")
    if kind not in SCALARS or (value is None and parameter.type.endswith("?")):
        return
    try:
        if kind in {"int", "long"} and float(value) != int(float(value)):
            raise ValueError
        SCALARS[kind](value)
    except (TypeError, ValueError):
        raise InvalidPackage(
            f"package {package.path.name}: input {parameter.id!r} takes a {kind}, got {value!r}",
            hint="fix its template under process.inputs in the config",
        ) from None


def _read(path: Path, where: str) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidPackage(f"{where}: no such file", hint="give the path of a CWL file") from None
    except yaml.YAMLError as err:
        raise InvalidPackage(f"{where}: not valid YAML/JSON: {err}") from None
    if not isinstance(document, dict) or "cwlVersion" not in document:
        raise InvalidPackage(f"{where}: not a CWL document (no cwlVersion)", hint="an application package is CWL v1.2")
    return document


def _entry_workflow(document: dict[str, Any], wanted: str, where: str) -> dict[str, Any]:
    graph = document.get("$graph", [document])
    workflows = [d for d in graph if isinstance(d, dict) and d.get("class") == "Workflow"]
    tools = [d for d in graph if isinstance(d, dict) and d.get("class") == "CommandLineTool"]
    if not workflows:
        raise InvalidPackage(
            f"{where}: holds no Workflow", hint="a package is one entry Workflow and its CommandLineTools"
        )
    if not tools:
        raise InvalidPackage(f"{where}: holds no CommandLineTool", hint="a package needs at least one CommandLineTool")
    if wanted:
        chosen = [w for w in workflows if w.get("id", "").lstrip("#") == wanted]
        if not chosen:
            ids = ", ".join(w.get("id", "?") for w in workflows)
            raise InvalidPackage(f"{where}: no Workflow called {wanted!r}", hint=f"its Workflows are: {ids}")
        return chosen[0]
    if len(workflows) > 1:
        ids = ", ".join(w.get("id", "?") for w in workflows)
        raise InvalidPackage(f"{where}: holds several Workflows ({ids})", hint="name the entry point as PATH.cwl#id")
    if "id" not in workflows[0]:
        raise InvalidPackage(f"{where}: the Workflow has no id", hint="give it an id: it becomes the process id")
    return workflows[0]


def _check_portability(document: dict[str, Any], path: Path, where: str) -> None:
    graph = document.get("$graph", [document])
    text = path.read_text(encoding="utf-8")
    for node in graph:
        if not isinstance(node, dict):
            continue
        name = node.get("id", node.get("class"))
        requirements = _requirements(node.get("requirements"))
        if "DockerRequirement" in requirements:
            raise InvalidPackage(
                f"{where}: {name} has DockerRequirement under requirements; it cannot run without a container",
                hint="move DockerRequirement under hints (a plain YAML edit)",
            )
        env = requirements.get("EnvVarRequirement", {}).get("envDef", {})
        names = [e.get("envName") for e in env] if isinstance(env, list) else list(env)
        if "PATH" in names:
            raise InvalidPackage(
                f"{where}: {name} sets PATH in EnvVarRequirement, hiding the tools installed here",
                hint="drop PATH from EnvVarRequirement",
            )
    if any(marker in text for marker in JS_MARKERS):
        raise InvalidPackage(
            f"{where}: uses JavaScript expressions, which need a node runtime",
            hint="use plain parameter references such as $(inputs.tile_id) instead",
        )


def _requirements(value: Any) -> dict[str, Any]:
    if isinstance(value, list):
        return {r.get("class"): r for r in value if isinstance(r, dict)}
    return value or {}


def _cwltool_validate(path: Path, where: str) -> None:
    cwltool = Path(sys.executable).with_name("cwltool")
    command = [str(cwltool) if cwltool.exists() else "cwltool", "--validate", "--quiet", str(path)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise InvalidPackage(f"{where}: cwltool is not installed", hint="pip install cwltool") from None
    if result.returncode != 0:
        lines = [ln.strip() for ln in (result.stderr or result.stdout).splitlines() if ln.strip()]
        detail = " ".join(lines[-3:])[:600]
        raise InvalidPackage(
            f"{where}: not valid CWL: {detail}", hint="`cwltool --validate FILE` shows the full report"
        )


def _parameters(spec: dict[str, Any] | list[Any]) -> list[Parameter]:
    items = spec.items() if isinstance(spec, dict) else ((p.get("id"), p) for p in spec)
    out = []
    for name, body in items:
        body = body if isinstance(body, dict) else {"type": body}
        kind = _type_text(body.get("type"))
        optional = kind.endswith("?") or "null" in kind
        out.append(
            Parameter(
                str(name).lstrip("#"), kind, str(body.get("label", "")), str(body.get("doc", "")).strip(), not optional
            )
        )
    return out


def _type_text(kind: Any) -> str:
    if isinstance(kind, str):
        return kind
    if isinstance(kind, list):
        inner = [k for k in kind if k != "null"]
        return (_type_text(inner[0]) + "?") if len(inner) == 1 and "null" in kind else " | ".join(map(_type_text, kind))
    if isinstance(kind, dict):
        if kind.get("type") == "array":
            return f"{_type_text(kind.get('items'))}[]"
        return str(kind.get("type", json.dumps(kind)))
    return str(kind)


def _names(parameters: tuple[Parameter, ...]) -> str:
    return ", ".join(f"{p.id} ({p.type})" for p in parameters)
