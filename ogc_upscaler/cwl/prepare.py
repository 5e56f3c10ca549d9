"""A package made ready to run on one kind of backend, unmodified in its own file.

The packed document (every import inlined, offline), wrapped in the stage steps, is written beside
the runs, adapted to the container mode: with ``container: none`` a ``DockerRequirement`` under
``requirements`` becomes a hint (the tool then runs from this machine's PATH) and an
``EnvVarRequirement`` setting ``PATH`` for the image is dropped (this machine's PATH is used),
each with a warning that says so. With an engine, nothing changes: the image provides what the
package expects. A tool whose command is not there is
refused before any job runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ogc_upscaler.cwl.package import Package
from ogc_upscaler.cwl.wrap import ENTRY, Staging, dumps, wrap
from ogc_upscaler.errors import InvalidPackage


@dataclasses.dataclass(frozen=True)
class Prepared:
    """The package as it runs here, and what was changed for that (one warning each).

    Each job runs a run file holding the adapted package wrapped in the stage steps
    (:mod:`~ogc_upscaler.cwl.wrap`), written into ``folder`` the first time a job needs it.
    """

    package: Package
    warnings: tuple[str, ...]
    folder: Path
    document: str = dataclasses.field(default="", repr=False)
    #: Whether staged Directories carry their local assets inside (a run in a container sees nothing else).
    carry_assets: bool = False
    _written: dict[Staging, str] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def entry(self, staged: Iterable[str] = ()) -> str:
        """``file#entry`` of the run file for a job staging the Directory inputs ``staged`` from item hrefs,
        written if it is not there yet (atomically: a reader never sees a part of it)."""
        staging = Staging(frozenset(staged), self.carry_assets)
        if staging not in self._written:
            text = dumps(wrap(json.loads(self.document), self.package, staging))
            digest = hashlib.sha256(text.encode()).hexdigest()[:12]
            target = self.folder / f"{self.package.workflow}-{digest}.cwl"
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
                tmp.write_text(text)
                tmp.replace(target)
            self._written[staging] = f"{target}#{ENTRY}"
        return self._written[staging]


def prepare(package: Package, folder: Path, container: str, search_path: str | None = None) -> Prepared:
    """The package made ready for ``container`` (``none``, ``docker``, ``podman``…), its run files to be
    written into ``folder`` by :meth:`Prepared.entry` when a job needs them (nothing is written before).

    ``search_path`` is the PATH the tools will run with (for the check that each command is there).
    """
    document = json.loads(package.packed)
    warnings: list[str] = []
    if container == "none":
        for node in document.get("$graph", [document]):
            warnings += _without_container(node)
        check_commands(package, search_path)
    wrap(document, package, Staging())  # a package that cannot be wrapped is refused now, not at its first job
    return Prepared(package, tuple(warnings), folder.resolve(), json.dumps(document), carry_assets=container != "none")


def _without_container(node: dict[str, Any]) -> list[str]:
    name = str(node.get("id", node.get("class", "?"))).lstrip("#")
    warnings = []
    requirements = node.get("requirements", [])
    docker = [r for r in requirements if r.get("class") == "DockerRequirement"]
    if docker:
        node["requirements"] = [r for r in requirements if r.get("class") != "DockerRequirement"]
        node["hints"] = [h for h in node.get("hints", []) if h.get("class") != "DockerRequirement"] + docker
        image = docker[0].get("dockerPull") or docker[0].get("dockerImageId") or "its image"
        warnings.append(
            f"{name} requires the image {image}; with container: none its command runs from this machine's PATH"
        )
    for requirement in node.get("requirements", []):
        if requirement.get("class") != "EnvVarRequirement":
            continue
        definitions = requirement.get("envDef", [])
        dropped = [d for d in definitions if d.get("envName") == "PATH"]
        if dropped:
            requirement["envDef"] = [d for d in definitions if d.get("envName") != "PATH"]
            warnings.append(
                f"{name} sets PATH={dropped[0].get('envValue')!s} for its image; with container: none that is "
                "ignored and this machine's PATH is used"
            )
    return warnings


def check_commands(package: Package, search_path: str | None) -> None:
    """Refuse a package whose tools' commands are not on ``search_path`` (runs without a container)."""
    for tool in package.tools:
        command = tool.command
        if not command or "$(" in command or "${" in command or ("/" in command and not command.startswith("/")):
            continue
        if shutil.which(command, path=search_path) is None:
            where = f" (its image {tool.image} has it)" if tool.image else ""
            raise InvalidPackage(
                f"package {package.path.name}: tool {tool.id} runs {command!r}, which is not on this machine's "
                f"PATH{where}",
                hint="install it here, or run in the package's image with `container: podman` (or docker)",
            )
