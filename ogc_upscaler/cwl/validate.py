"""The OGC EO Application Package best practice's checks (OGC 20-089), as a platform applies them before
it deploys a package: ogc-ap-validator's requirement checks, run on the package's packed document (so
imports resolve offline) with its schema.org metadata, and what the platforms that run packages in
containers refuse besides."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from typing import Literal

from ogc_upscaler.cwl.package import Package

Level = Literal["error", "hint", "note"]
#: ogc-ap-validator's checks, one per requirement of the best practice (run one by one: one failing check
#: does not hide the others).
CHECKS = (*(f"check_req_{n}" for n in range(7, 15)), "check_unsupported_cwl")


@dataclass(frozen=True)
class Finding:
    """One finding: ``error`` (a platform refuses the package), ``hint`` or ``note``; the requirement of the
    best practice it is about (``req-7``…), when there is one."""

    level: Level
    message: str
    requirement: str | None = None

    def __str__(self) -> str:
        where = f" ({self.requirement})" if self.requirement else ""
        return f"{self.level.upper()}{where}: {self.message}"


def best_practice(package: Package) -> list[Finding]:
    """Every finding for ``package``, errors first."""
    from ap_validator.app_package import AppPackage

    document = {**json.loads(package.packed), **json.loads(package.metadata)}
    for node in document.get("$graph", [document]):
        for parameter in node.get("inputs", []) + node.get("outputs", []):
            kind = parameter.get("type")
            if isinstance(kind, list) and len(kind) == 1:  # [T] is T; ogc-ap-validator 0.5 fails on the list
                parameter["type"] = kind[0]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        validator = AppPackage(cwl=document, entry_point="main")
        code, out, _ = validator.validate_cwl()
        issues = [] if code == 0 else [{"type": "error", "message": f"CWL is invalid: {out.strip()}"}]
        for check in CHECKS if code == 0 else ():
            try:
                issues += getattr(validator, check)()
            except Exception as err:  # a check of the validator that fails on this package: said, not fatal
                issues.append({"type": "note", "message": f"ogc-ap-validator's {check} failed: {err!r}"})
    findings = [
        Finding(i["type"], str(i["message"]).strip().replace("'main'", repr(package.workflow)), i.get("req"))
        for i in issues
    ]
    for tool in package.tools:
        if tool.image is None:
            findings.append(
                Finding(
                    "error",
                    f"tool {tool.id} names no image (DockerRequirement): platforms run each tool in its container",
                )
            )
    order = {"error": 0, "hint": 1, "note": 2}
    return sorted(findings, key=lambda f: order[f.level])
