"""The best practice's checks, as a platform applies them (ogc-ap-validator's, offline on the packed document)."""

from __future__ import annotations

import subprocess
import sys

from ogc_upscaler.cwl import load_package
from ogc_upscaler.cwl.validate import best_practice

from ..conftest import PACKAGES

NDVI = PACKAGES.parent.parent / "app_packages" / "ndvi" / "ndvi.cwl"
ECOSYSTEM = PACKAGES / "ecosystem"


def test_our_package_passes_what_a_platform_checks() -> None:
    assert [f for f in best_practice(load_package(NDVI)) if f.level != "note"] == []


def test_what_a_platform_would_refuse_is_named_with_its_requirement(tmp_path) -> None:
    findings = best_practice(load_package(PACKAGES / "count.cwl"))
    errors = [str(f) for f in findings if f.level == "error"]
    assert "ERROR (req-11): Missing metadata element for application package: softwareVersion" in errors
    assert "ERROR (req-10): Missing element for input 'name' of Workflow 'count': label" in errors
    assert findings[0].level == "error" and findings[-1].level in {"hint", "note"}
    imageless = tmp_path / "imageless.cwl"
    text = (ECOSYSTEM / "platform-style.cwl").read_text()
    imageless.write_text(
        text.replace("    hints:\n      DockerRequirement:\n        dockerPull: localhost/ndvi-tile:0.1.0\n", "")
    )
    errors = [str(f) for f in best_practice(load_package(imageless)) if f.level == "error"]
    assert "ERROR: tool clt names no image (DockerRequirement): platforms run each tool in its container" in errors


def test_forms_the_validator_itself_trips_on_are_checked_all_the_same() -> None:
    # expressions.cwl types an input as a one-element list, [{type: array, items: double}], as real packages
    # do; ogc-ap-validator 0.5 raises AttributeError on that form when given the document as it is
    findings = best_practice(load_package(ECOSYSTEM / "expressions.cwl"))
    assert not [f for f in findings if "failed" in f.message]
    assert any(f.requirement == "req-9" for f in findings)


def test_validate_from_the_command_line_exits_1_when_a_platform_would_refuse() -> None:
    exe = [sys.executable, "-m", "ogc_upscaler", "package", "validate"]
    good = subprocess.run([*exe, str(NDVI)], capture_output=True, text=True)
    assert good.returncode == 0 and good.stdout.strip().endswith("ndvi.cwl#ndvi: 0 error(s), 0 hint(s)")
    bad = subprocess.run([*exe, str(PACKAGES / "count.cwl")], capture_output=True, text=True)
    assert bad.returncode == 1 and "ERROR (req-11)" in bad.stdout
