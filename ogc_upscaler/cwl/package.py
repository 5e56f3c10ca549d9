"""A loaded application package as typed values: its entry Workflow's inputs and outputs, and what each
of its CommandLineTools needs to run (command, image, environment, resources)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ogc_upscaler.cwl.resources import Expressions
from ogc_upscaler.cwl.types import CwlType
from ogc_upscaler.errors import InvalidPackage

#: CWL's defaults where a tool declares neither the minimum nor the maximum.
DEFAULT_CORES = 1.0
#: Our default memory for a tool that declares none: CWL's 256 MiB is too little for most EO tools.
DEFAULT_RAM_MIB = 1024.0


@dataclass(frozen=True)
class Parameter:
    """One input or output of a package: id, CWL type, label, doc and default (``None`` when it has none)."""

    id: str
    type: CwlType
    label: str = ""
    doc: str = ""
    default: Any = None
    has_default: bool = False

    @property
    def required(self) -> bool:
        """Whether a value must be given: not optional and without a default."""
        return not self.type.optional and not self.has_default


@dataclass(frozen=True)
class Resources:
    """A tool's ``ResourceRequirement``: cores and memory (MiB), minimum and maximum as CWL reads them
    (a missing minimum is the maximum, a missing maximum the minimum). Fields given as expressions are
    None here and evaluated for each job (:meth:`for_job`)."""

    cores_min: float | None = None
    cores_max: float | None = None
    ram_min: float | None = None
    ram_max: float | None = None
    expressions: Expressions = field(default_factory=Expressions)

    @property
    def cores(self) -> float:
        """What to reserve: the minimum, else the maximum, else CWL's default of 1."""
        return next((v for v in (self.cores_min, self.cores_max) if v is not None), DEFAULT_CORES)

    @property
    def ram_mib(self) -> float:
        """What to reserve: the minimum, else the maximum, else our default."""
        return next((v for v in (self.ram_min, self.ram_max) if v is not None), DEFAULT_RAM_MIB)

    def for_job(self, values: Mapping[str, Any], where: str) -> Resources:
        """These resources with their expressions evaluated for a job whose Workflow inputs are ``values``."""
        evaluated = self.expressions.evaluate(values, where)
        return replace(self, **evaluated) if evaluated else self


@dataclass(frozen=True)
class Tool:
    """One CommandLineTool of a package and what running it depends on."""

    id: str
    command: str | None
    image: str | None = None
    image_required: bool = False
    environment: tuple[str, ...] = ()
    resources: Resources = field(default_factory=Resources)


@dataclass(frozen=True)
class Package:
    """A loaded application package: the file, its entry Workflow, its inputs, outputs and tools, and
    its packed document (one JSON file with every ``$import`` and ``run`` inlined, entry ``#main``)."""

    path: Path
    workflow: str
    label: str
    doc: str
    version: str | None
    inputs: tuple[Parameter, ...]
    outputs: tuple[Parameter, ...]
    temporary_fail_codes: frozenset[int] = frozenset()
    tools: tuple[Tool, ...] = ()
    javascript: bool = False
    packed: str = field(default="", repr=False)
    #: The document's schema.org metadata (``s:softwareVersion``, ``s:author``…) as JSON, keys as ``s:name``.
    metadata: str = field(default="{}", repr=False)

    @property
    def entry(self) -> str:
        """``file#workflow``, as cwltool and the settings name it."""
        return f"{self.path}#{self.workflow}"

    @property
    def cores(self) -> float:
        """The cores a job reserves: the most any of its tools asks (expressions read as CWL's default)."""
        return self.demand()[0]

    @property
    def ram_mib(self) -> int:
        """The memory (MiB) a job reserves: the most any of its tools asks (expressions read as our default)."""
        return int(self.demand()[1])

    @property
    def resource_expressions(self) -> bool:
        """Whether a tool's resources are expressions, evaluated per job."""
        return any(t.resources.expressions.fields for t in self.tools)

    def demand(self, values: Mapping[str, Any] | None = None) -> tuple[float, float]:
        """The cores and memory (MiB) one job reserves, the most any of its tools asks, its resource
        expressions evaluated for the job's (CWL-typed) input ``values`` when given."""
        needs = [self._needs(t, values) for t in self.tools]
        return (
            max((n.cores for n in needs), default=DEFAULT_CORES),
            max((n.ram_mib for n in needs), default=DEFAULT_RAM_MIB),
        )

    def check_fits(self, cores: float, ram_mib: float, where: str, values: Mapping[str, Any] | None = None) -> None:
        """Refuse (before any job runs) a package whose tools ask more than ``where`` offers one job; with a
        job's ``values``, its resource expressions evaluated for that job."""
        for tool in self.tools:
            needs = self._needs(tool, values)
            if needs.cores > cores or needs.ram_mib > ram_mib:
                raise InvalidPackage(
                    f"package {self.path.name}: tool {tool.id} asks {needs.cores:g} cores and {needs.ram_mib:g} MiB"
                    f" (its ResourceRequirement), more than {where} offers one job ({cores:g} cores, {ram_mib:g} MiB)",
                    hint="lower coresMin/ramMin in the package, or run it where such nodes are",
                )

    def _needs(self, tool: Tool, values: Mapping[str, Any] | None) -> Resources:
        if values is None:
            return tool.resources
        return tool.resources.for_job(values, f"package {self.path.name}: tool {tool.id}")

    def input(self, name: str) -> Parameter:
        """The input called ``name``."""
        for parameter in self.inputs:
            if parameter.id == name:
                return parameter
        raise KeyError(name)
