"""The pygeoapi config and OpenAPI document written for the endpoint are valid, and packages are vetted."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pygeoapi.config import validate_config
from pygeoapi.openapi import validate_openapi_document

from ogc_upscaler.cli import serve
from ogc_upscaler.errors import InvalidConfig
from ogc_upscaler.server.campaign_size import DEFAULT_MAX_TILES
from ogc_upscaler.server.settings import ServerSettings, find_packages, prepare

from ..conftest import PACKAGES

APP_PACKAGES = Path(__file__).parents[2] / "app_packages"


def test_the_config_and_openapi_document_validate(tmp_path) -> None:
    settings = ServerSettings(state=tmp_path / "state", packages=(APP_PACKAGES,), data_roots=(tmp_path,), port=5099)
    env = prepare(settings)
    config = yaml.safe_load(Path(env["PYGEOAPI_CONFIG"]).read_text())
    assert validate_config(config)
    assert validate_openapi_document(yaml.safe_load(Path(env["PYGEOAPI_OPENAPI"]).read_text()))
    assert set(config["resources"]) == {"ndvi", "upscale"}
    assert config["server"]["manager"]["name"] == "ogc_upscaler.server.manager.UpscalerManager"
    processor = config["resources"]["ndvi"]["processor"]
    assert processor["url"] == "http://127.0.0.1:5099" and processor["data_roots"] == [str(tmp_path.resolve())]
    assert config["resources"]["upscale"]["processor"]["packages"] == {
        "ndvi": f"{APP_PACKAGES / 'ndvi' / 'ndvi.cwl'}#ndvi"
    }
    assert processor["allow_internal_urls"] is False
    assert config["resources"]["upscale"]["processor"]["max_tiles"] == DEFAULT_MAX_TILES
    paths = yaml.safe_load(Path(env["PYGEOAPI_OPENAPI"]).read_text())["paths"]
    assert {"get", "post"} <= set(paths["/jobs"]) and "post" in paths["/jobs/{jobId}/results"]
    assert "get" in paths["/jobs/{jobId}/definition"]


def test_internal_urls_and_the_tile_limit_reach_the_processors(tmp_path) -> None:
    settings = ServerSettings(state=tmp_path, packages=(APP_PACKAGES,), allow_internal_urls=True, max_tiles=50)
    config = yaml.safe_load(Path(prepare(settings)["PYGEOAPI_CONFIG"]).read_text())
    assert all(r["processor"]["allow_internal_urls"] is True for r in config["resources"].values())
    assert config["resources"]["upscale"]["processor"]["max_tiles"] == 50
    with pytest.raises(InvalidConfig, match="max_tiles: must be 1 or more"):
        ServerSettings(state=tmp_path, packages=(), max_tiles=0)
    options = {option.name: option for option in serve.params}
    assert options["max_tiles"].default == DEFAULT_MAX_TILES and options["allow_internal_urls"].is_flag


def test_a_package_asking_for_a_shell_is_not_served(tmp_path) -> None:
    text = (
        (PACKAGES / "flaky.cwl")
        .read_text()
        .replace("InitialWorkDirRequirement:", "ShellCommandRequirement: {}\n      InitialWorkDirRequirement:")
    )
    (tmp_path / "shell.cwl").write_text(text)
    found = find_packages((tmp_path / "shell.cwl", PACKAGES / "count.cwl"))
    assert list(found.packages) == ["count"], "one refused package never stops the others"
    assert found.refused[0][0] == "shell.cwl#flaky" and "ShellCommandRequirement" in found.refused[0][1]
    assert "refused: shell.cwl#flaky (uses ShellCommandRequirement" in found.summary()


def test_two_packages_with_one_process_id_are_refused(tmp_path) -> None:
    (tmp_path / "copy.cwl").write_text((PACKAGES / "flaky.cwl").read_text())
    found = find_packages((PACKAGES / "flaky.cwl", tmp_path / "copy.cwl"))
    assert list(found.packages) == ["flaky"] and found.packages["flaky"].path == (PACKAGES / "flaky.cwl").resolve()
    assert found.refused == (("copy.cwl#flaky", "process id 'flaky' is taken"),)
    with pytest.raises(InvalidConfig, match="does not exist"):
        find_packages((tmp_path / "missing",))
