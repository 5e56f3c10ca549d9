"""The Workflow every package runs inside: ``cwl/stage-in.cwl`` → the package → ``cwl/stage-out.cwl``.

A platform that runs application packages (EOEPCA's ADES, ZOO-DRU) does not run them bare: it
stages each Directory input in from STAC item URLs, and stages the result Directory out. This
module writes the same around a packed package, as one more process in its ``$graph``, entry
:data:`ENTRY`, so the package file itself is never changed and one file holds the whole run
(a Toil node without our filesystem gets it alone):

- one stage-in step per Directory input a job gives as item hrefs (the wrapper's input is then
  ``string[]``); a ``Directory[]`` input given item hrefs per element is staged by a scatter;
- the package, as a step (``run: #main``), every other input passed on as the job gives it (typed as
  the package types it, or ``Any`` for a type the package defines, which the package then checks),
  the package's defaults applying to what the job leaves out;
- one stage-out step taking every Directory the package returns, whose checked catalog is the
  wrapper's output under the name of the package's first Directory output; the package's other
  outputs pass through.

Which inputs a job stages is decided by its values, so a package has one wrapper per such set
(:class:`Staging`); a campaign has one, almost always.
"""

from __future__ import annotations

import copy
import functools
import importlib.resources
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ogc_upscaler.cwl.package import Package
from ogc_upscaler.errors import InvalidPackage

#: The wrapper's id in the run file (the package keeps ``#main``).
ENTRY = "ogc-upscaler"
#: The ids the stage steps' tools get in the run file.
STAGE_IN, STAGE_OUT = "ogc-upscaler-stage-in", "ogc-upscaler-stage-out"
#: What belongs to a packed document rather than to its process.
DOCUMENT_KEYS = ("cwlVersion", "$namespaces", "$schemas")
#: CWL's own type names: a type made only of these can be repeated in the wrapper as it is.
BUILTIN = frozenset({"null", "boolean", "int", "long", "float", "double", "string", "File", "Directory", "Any"})


@dataclass(frozen=True)
class Staging:
    """How one job's run is wrapped: which Directory inputs it stages from item hrefs, and whether local
    assets are carried inside the staged Directories (a run in a container sees nothing else)."""

    inputs: frozenset[str] = frozenset()
    carry_assets: bool = False


def wrap(document: dict[str, Any], package: Package, staging: Staging) -> dict[str, Any]:
    """The packed ``document`` of ``package`` with the stage steps and the wrapper :data:`ENTRY` added."""
    document = copy.deepcopy(document)
    if "$graph" not in document:  # one process, its steps' tools inline: packed without a graph
        top = {k: document.pop(k) for k in DOCUMENT_KEYS if k in document}
        document = {**top, "$graph": [{**document, "id": "#main"}]}
    graph = document["$graph"]
    taken = {str(node.get("id", "")).lstrip("#") for node in graph}
    clash = taken & {ENTRY, STAGE_IN, STAGE_OUT}
    if clash:
        raise InvalidPackage(
            f"package {package.path.name}: a process is called {', '.join(sorted(clash))}, a name ogc-upscaler "
            "keeps for the steps it runs around packages",
            hint="rename that process in the package",
        )
    main = next(node for node in graph if node.get("id") == "#main")
    graph += [step_tool("stage-in", STAGE_IN), step_tool("stage-out", STAGE_OUT), _wrapper(main, package, staging)]
    return {**{k: v for k, v in document.items() if k != "$graph"}, "$graph": graph}


@functools.cache
def step_tool(name: str, as_id: str) -> dict[str, Any]:
    """The CommandLineTool ``cwl/NAME.cwl``, packed, with the id ``as_id``."""
    from ogc_upscaler.cwl.load import pack_process

    packed = pack_process(tool_file(name))
    packed.pop("cwlVersion", None)
    packed.pop("$namespaces", None)
    return _renamed(packed, "#main", f"#{as_id}")


def tool_file(name: str) -> Path:
    """The path of ``cwl/NAME.cwl`` as installed with the package."""
    return Path(str(importlib.resources.files("ogc_upscaler") / "data" / "cwl" / f"{name}.cwl"))


def _wrapper(main: dict[str, Any], package: Package, staging: Staging) -> dict[str, Any]:
    own = f"#{ENTRY}"
    inputs: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    into_package: list[dict[str, Any]] = []
    scatter = False
    declared_in = {str(i["id"]).rsplit("/", 1)[-1]: i for i in main.get("inputs", [])}
    for parameter in package.inputs:
        name = parameter.id
        if name in staging.inputs:
            many = parameter.type.array_of("Directory")
            scatter |= many
            hrefs: Any = {"type": "array", "items": "string"}
            inputs.append({"id": f"{own}/{name}", "type": {"type": "array", "items": hrefs} if many else hrefs})
            step = f"{own}/stage_in_{name}"
            steps.append(
                {
                    "id": step,
                    "run": f"#{STAGE_IN}",
                    "in": [
                        {"id": f"{step}/reference", "source": f"{own}/{name}"},
                        {"id": f"{step}/name", "default": name},
                        {"id": f"{step}/carry_assets", "default": staging.carry_assets},
                    ],
                    "out": [f"{step}/staged"],
                    **({"scatter": f"{step}/reference"} if many else {}),
                }
            )
            into_package.append({"id": f"{own}/package/{name}", "source": f"{step}/staged"})
        else:
            raw = declared_in[name]
            kind = _portable(raw.get("type"), optional=not parameter.required)
            inputs.append({"id": f"{own}/{name}", "type": kind})
            link = {"id": f"{own}/package/{name}", "source": f"{own}/{name}"}
            if "default" in raw:  # a value left out (null) takes the package's default, as running it bare does
                link["default"] = raw["default"]
            into_package.append(link)
    declared = {str(o["id"]).rsplit("/", 1)[-1]: o for o in main.get("outputs", [])}
    results = [p.id for p in package.outputs if p.type.is_("Directory") or p.type.array_of("Directory")]
    steps.append(
        {
            "id": f"{own}/package",
            "run": "#main",
            "in": into_package,
            "out": [f"{own}/package/{p.id}" for p in package.outputs],
        }
    )
    outputs = [
        {"id": f"{own}/{p.id}", "type": _portable(declared[p.id].get("type")), "outputSource": f"{own}/package/{p.id}"}
        for p in package.outputs
        if p.id not in results
    ]
    if results:
        step = f"{own}/stage_out"
        steps.append(
            {
                "id": step,
                "run": f"#{STAGE_OUT}",
                "in": [
                    {
                        "id": f"{step}/results",
                        "source": [f"{own}/package/{r}" for r in results],
                        "linkMerge": "merge_flattened",
                    },
                    {"id": f"{step}/name", "default": results[0]},
                ],
                "out": [f"{step}/catalog"],
            }
        )
        outputs.insert(0, {"id": f"{own}/{results[0]}", "type": "Directory", "outputSource": f"{step}/catalog"})
    requirements = [{"class": "SubworkflowFeatureRequirement"}, {"class": "MultipleInputFeatureRequirement"}]
    if scatter:
        requirements.append({"class": "ScatterFeatureRequirement"})
    return {
        "class": "Workflow",
        "id": own,
        "label": f"{package.label or package.workflow}, staged in and out by ogc-upscaler",
        "requirements": requirements,
        "inputs": inputs,
        "outputs": outputs,
        "steps": steps,
    }


def _portable(kind: Any, optional: bool = True) -> Any:
    """A parameter's type as the wrapper can repeat it: as declared when made of CWL's own types only,
    else ``Any`` (a type the package defines is not defined in the wrapper; the package checks it),
    made optional when the package does not need a value."""

    def builtin(t: Any) -> bool:
        if isinstance(t, str):
            return t in BUILTIN
        if isinstance(t, list):
            return all(builtin(x) for x in t)
        return isinstance(t, dict) and t.get("type") == "array" and builtin(t.get("items"))

    kinds = (kind if isinstance(kind, list) else [kind]) if builtin(kind) else ["Any"]
    if "null" in kinds or not optional:
        return kinds if len(kinds) > 1 else kinds[0]
    return ["null", *kinds]


def _renamed(value: Any, old: str, new: str) -> Any:
    """``value`` with every id ``old`` (and ``old/...``) replaced by ``new``."""
    if isinstance(value, dict):
        return {k: _renamed(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, old, new) for v in value]
    if isinstance(value, str) and (value == old or value.startswith(old + "/")):
        return new + value[len(old) :]
    return value


def dumps(document: dict[str, Any]) -> str:
    """The run file's text."""
    return json.dumps(document, indent=1)
