"""A ``ResourceRequirement`` whose values are expressions (``coresMin: $(inputs.threads)``,
``ramMin: ${ return inputs.bands.length * 512; }``), evaluated for one job as cwltool evaluates
them: with its expression engine (Node.js for JavaScript), on the tool's inputs as the job gives
them.

A tool's inputs are the job's values where a step of the entry Workflow passes a Workflow input
straight on (``in: {threads: threads}``), a step's ``default`` otherwise, else the tool's own
default. A tool run deeper (in a sub-workflow) or fed by another step's output has only its
defaults: an expression that needs more cannot be evaluated before the job runs, and is read as
CWL's default (1 core; our 1024 MiB) with a warning, and cwltool still evaluates it when it runs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ogc_upscaler.errors import InvalidPackage

log = logging.getLogger(__name__)

#: ResourceRequirement's fields ogc-upscaler reads, and the Resources field each sets.
FIELDS = {"coresMin": "cores_min", "coresMax": "cores_max", "ramMin": "ram_min", "ramMax": "ram_max"}


@dataclass(frozen=True)
class Expressions:
    """What evaluating a tool's resource expressions needs: the expressions (field, text), where each
    tool input comes from (``{"input": name}`` or ``{"value": v}``), as JSON, and the tool's
    requirements (its ``expressionLib``) as JSON."""

    fields: tuple[tuple[str, str], ...] = ()
    bindings: str = field(default="{}", repr=False)
    requirements: str = field(default="[]", repr=False)

    def evaluate(self, values: Mapping[str, Any], where: str) -> dict[str, float]:
        """Each field's value for a job with the Workflow inputs ``values`` (``ram_min``… as Resources names
        them); InvalidPackage if an expression gives no number."""
        if not self.fields:
            return {}
        inputs = {}
        for name, source in json.loads(self.bindings).items():
            if "input" in source and source["input"] in values:
                inputs[name] = values[source["input"]]
            elif "value" in source:
                inputs[name] = source["value"]
        requirements = json.loads(self.requirements)
        quiet = logging.getLogger("cwl_utils")
        level, quiet.level = quiet.level, logging.CRITICAL  # it logs each failure's traceback: ours says it
        try:
            return dict(self._evaluated(inputs, requirements, where))
        finally:
            quiet.level = level

    def _evaluated(self, inputs: dict[str, Any], requirements: list[Any], where: str) -> Iterator[tuple[str, float]]:
        from cwl_utils.errors import WorkflowException
        from cwl_utils.expression import do_eval

        for key, expression in self.fields:
            try:
                value = do_eval(expression, inputs, requirements, None, None, {})
            except WorkflowException as err:
                first = str(err).splitlines()[1:2] or [str(err)]
                log.warning("%s: %s (%s) cannot be evaluated before the job runs: %s", where, key, expression, first[0])
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidPackage(
                    f"{where}: ResourceRequirement {key}: {expression} gives {value!r}, not a number",
                    hint="a resource expression must evaluate to a number of cores or MiB",
                )
            yield FIELDS[key], float(value)


def bindings(main: Mapping[str, Any], tool: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Where each input of ``tool`` comes from, for the steps of the entry Workflow ``main`` that run it."""
    tool_id = str(tool.get("id", ""))
    own = {_short(str(i["id"])): i for i in tool.get("inputs", []) if isinstance(i, Mapping)}
    found: dict[str, dict[str, Any]] = {n: {"value": i["default"]} for n, i in own.items() if "default" in i}
    inputs = {str(i.get("id")): i for i in main.get("inputs", []) if isinstance(i, Mapping)}
    for step in main.get("steps", []):
        run = step.get("run")
        if run is not tool and run != tool_id:
            continue
        for link in step.get("in", []):
            name = _short(str(link.get("id", "")))
            source = link.get("source")
            sources = source if isinstance(source, list) else [source] if source else []
            fallback = {"value": link["default"]} if "default" in link else found.get(name, {})
            if len(sources) == 1 and "valueFrom" not in link and sources[0] in inputs:
                default = inputs[sources[0]]  # left out by the job, the Workflow input's default, else the step's
                found[name] = {
                    "input": _short(sources[0]),
                    **({"value": default["default"]} if "default" in default else fallback),
                }
            elif fallback:
                found[name] = fallback
        break
    return found


def _short(name: str) -> str:
    return name.rsplit("/", 1)[-1].lstrip("#")
