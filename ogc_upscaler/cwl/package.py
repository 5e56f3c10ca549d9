"""A loaded application package as typed values: its entry Workflow's inputs and outputs, and what each
of its CommandLineTools needs to run (command, image, environment, resources)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    (a missing minimum is the maximum, a missing maximum the minimum); expressions are left to cwltool."""

    cores_min: float | None = None
    cores_max: float | None = None
    ram_min: float | None = None
    ram_max: float | None = None
    expressions: tuple[str, ...] = ()

    @property
    def cores(self) -> float:
        """What to reserve: the minimum, else the maximum, else CWL's default of 1."""
        return next((v for v in (self.cores_min, self.cores_max) if v is not None), DEFAULT_CORES)

    @property
    def ram_mib(self) -> float:
        """What to reserve: the minimum, else the maximum, else our default."""
        return next((v for v in (self.ram_min, self.ram_max) if v is not None), DEFAULT_RAM_MIB)


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
        """The cores a job reserves: the most any of its tools asks."""
        return max((t.resources.cores for t in self.tools), default=DEFAULT_CORES)

    @property
    def ram_mib(self) -> int:
        """The memory (MiB) a job reserves: the most any of its tools asks."""
        return int(max((t.resources.ram_mib for t in self.tools), default=DEFAULT_RAM_MIB))

    def check_fits(self, cores: float, ram_mib: float, where: str) -> None:
        """Refuse (before any job runs) a package whose tools ask more than ``where`` offers one job."""
        for tool in self.tools:
            needs = tool.resources
            if needs.cores > cores or needs.ram_mib > ram_mib:
                raise InvalidPackage(
                    f"package {self.path.name}: tool {tool.id} asks {needs.cores:g} cores and {needs.ram_mib:g} MiB"
                    f" (its ResourceRequirement), more than {where} offers one job ({cores:g} cores, {ram_mib:g} MiB)",
                    hint="lower coresMin/ramMin in the package, or run it where such nodes are",
                )

    def input(self, name: str) -> Parameter:
        """The input called ``name``."""
        for parameter in self.inputs:
            if parameter.id == name:
                return parameter
        raise KeyError(name)
