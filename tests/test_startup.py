"""The command line starts at once: importing the package or its command line imports nothing heavy (the
figures against ``rio --help`` are in bench/bench_startup.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("matplotlib", "rasterio", "requests", "pystac", "cwltool", "numpy", "shapely", "pyproj")


@pytest.mark.parametrize("module", ["ogc_upscaler", "ogc_upscaler.cli", "ogc_upscaler.stage"])
def test_importing_imports_nothing_heavy(module) -> None:
    allowed = {"ogc_upscaler.stage": {"pystac"}}.get(module, set())
    code = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout))
    heavy = sorted(n for n in HEAVY if n in loaded and n not in allowed)
    assert heavy == [], f"import {module} imports {', '.join(heavy)}"


def test_the_help_imports_nothing_heavy() -> None:
    code = (
        "import sys, json\nfrom ogc_upscaler.cli import main\nsys.argv = ['ogc-upscaler', 'run', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\nprint(json.dumps(sorted(sys.modules)), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Plan what is new" in done.stdout
    loaded = set(json.loads(done.stderr.strip().splitlines()[-1]))
    assert not [n for n in HEAVY if n in loaded]


def test_the_public_names_still_arrive_on_first_use() -> None:
    code = "import ogc_upscaler as u; print(len(u.grid_from_spec('laea-100km').tiles(u.load_aoi('5,45,15,55'))))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "99\n"


def test_a_submodule_sharing_a_public_name_leaves_the_name_to_the_function() -> None:
    code = (
        "import ogc_upscaler.plan, ogc_upscaler.export, ogc_upscaler as u; print(callable(u.plan), callable(u.export))"
    )
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "True True\n"
    )
