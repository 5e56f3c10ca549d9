"""Loading application packages as the ecosystem writes them: entries, types, defaults, resources, refusals."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from ogc_upscaler.cwl import load_package, workflows
from ogc_upscaler.errors import InvalidPackage

from ..conftest import PACKAGES

NDVI = PACKAGES.parent.parent / "app_packages" / "ndvi" / "ndvi.cwl"
ECOSYSTEM = PACKAGES / "ecosystem"


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test loads with an empty cache of its own."""
    monkeypatch.setenv("OGC_UPSCALER_CACHE", str(tmp_path / "cache"))


def test_the_ndvi_package_lists_its_inputs_and_outputs() -> None:
    package = load_package(NDVI)
    assert package.workflow == "ndvi" and package.version == "0.1.0"
    assert [(p.id, p.type.text) for p in package.inputs] == [  # in the order the file declares them
        ("items", "Directory"),
        ("bbox", "string"),
        ("epsg", "int"),
        ("resolution", "double"),
        ("tile_id", "string"),
        ("datetime", "string"),
    ]
    assert [(p.id, p.type.text) for p in package.outputs] == [("ndvi", "Directory")]
    assert package.entry.endswith("ndvi.cwl#ndvi") and package.cores == 1 and package.ram_mib == 1024


def test_a_platform_package_is_taken_as_it_is() -> None:
    package = load_package(ECOSYSTEM / "platform-style.cwl")
    assert package.workflow == "vegetation" and package.version == "1.2.0" and package.javascript
    optional = {p.id: p.default for p in package.inputs if not p.required}
    assert optional == {"epsg": 32632, "resolution": 20, "datetime": "2024-04-01T00:00:00Z/2024-05-01T00:00:00Z"}
    (tool,) = package.tools
    assert tool.command == "ndvi-tile" and tool.image == "localhost/ndvi-tile:0.1.0" and not tool.image_required
    assert set(tool.environment) == {"PATH", "APP_MODE"}
    # only the maxima are declared: CWL reads the minimum as the maximum
    assert (package.cores, package.ram_mib) == (1, 512)
    required = load_package(ECOSYSTEM / "image-required.cwl")
    assert required.tools[0].image_required and required.ram_mib == 768


def test_the_entry_is_the_named_workflow_else_main_else_the_only_top_level_one() -> None:
    assert workflows(ECOSYSTEM / "variants.cwl") == ["ndvi-fine", "ndvi-coarse"], "a sub-workflow is no entry"
    with pytest.raises(InvalidPackage, match=r"several Workflows \(ndvi-fine, ndvi-coarse\)") as err:
        load_package(ECOSYSTEM / "variants.cwl")
    assert "variants.cwl#ID" in err.value.hint
    coarse = load_package(f"{ECOSYSTEM / 'variants.cwl'}#ndvi-coarse")
    assert coarse.workflow == "ndvi-coarse" and "resolution" not in {p.id for p in coarse.inputs}
    packed = load_package(ECOSYSTEM / "packed.cwl")
    assert packed.workflow == "main" and packed.version == "0.3.1" and packed.input("items").type.is_("Directory")
    with pytest.raises(InvalidPackage, match="no Workflow called 'other'"):
        load_package(f"{NDVI}#other")


def test_types_imported_from_the_eoap_schemas_load_offline_and_read_as_types() -> None:
    package = load_package(ECOSYSTEM / "types.cwl")
    kinds = {p.id: p.type for p in package.inputs}
    assert kinds["aoi"].kind == "record" and kinds["aoi"].name == "BBox"
    assert [(n, t.text) for n, t in kinds["aoi"].fields] == [("bbox", "double[]"), ("crs", "CRS")]
    assert kinds["aoi"].fields[1][1].symbols[0] == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
    assert kinds["catalog"].name == "URI" and kinds["mode"].symbols == ("fast", "accurate")
    assert kinds["scenes"].array_of("Directory") and kinds["mask"].optional and kinds["limit"].text == "int?"
    assert {p.id for p in package.inputs if not p.required} == {"mode", "bands", "mask", "strict", "limit"}


def test_javascript_is_validated_with_node() -> None:
    assert shutil.which("node") or shutil.which("nodejs"), "Node.js is installed by scripts/test.sh"
    assert load_package(ECOSYSTEM / "expressions.cwl").javascript


def test_a_loaded_package_is_cached_by_content(tmp_path, monkeypatch) -> None:
    from ogc_upscaler.cwl import load

    copy = tmp_path / "pkg.cwl"
    shutil.copy(ECOSYSTEM / "platform-style.cwl", copy)
    first = load_package(copy)
    loads = []
    real = load._load
    monkeypatch.setattr(load, "_load", lambda *a: loads.append(a) or real(*a))
    assert load_package(copy) == first and loads == [], "the second load is the cache's: cwltool is not asked"
    copy.write_text(copy.read_text().replace("id: vegetation\n", "id: greenness\n"))
    assert load_package(copy).workflow == "greenness" and len(loads) == 1, "a changed file is loaded again"


@pytest.mark.parametrize(
    ("name", "message"),
    [("invalid.cwl", "not valid CWL"), ("missing.cwl", "no such file"), ("", "a folder, holding")],
)
def test_packages_that_are_not_valid_are_refused_with_the_reason(name, message) -> None:
    with pytest.raises(InvalidPackage, match=message) as err:
        load_package(PACKAGES / name)
    assert err.value.hint and err.value.exit_code == 2


def test_inspect_takes_a_file_or_a_folder_from_the_command_line() -> None:
    exe = [sys.executable, "-m", "ogc_upscaler", "package", "inspect"]
    good = subprocess.run([*exe, str(NDVI.parent)], capture_output=True, text=True)
    assert good.returncode == 0, good.stderr
    assert "items" in good.stdout and "Directory" in good.stdout and "outputs:" in good.stdout
    platform = subprocess.run([*exe, str(ECOSYSTEM / "platform-style.cwl")], capture_output=True, text=True)
    assert platform.returncode == 0, platform.stderr
    assert "(default 32632)" in platform.stdout and "localhost/ndvi-tile:0.1.0" in platform.stdout
    assert "Resolved" not in platform.stderr, "cwltool's own chatter stays out"
    bad = subprocess.run([*exe, str(PACKAGES / "invalid.cwl")], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ")
    assert json.loads(json.dumps(bad.stderr))  # one clear line, no traceback
    assert "Traceback" not in bad.stderr
