"""Campaign config files: parsed once, with errors that name the key and what is expected."""

from __future__ import annotations

import pytest

from ogc_upscaler.config import load_campaign
from ogc_upscaler.errors import InvalidAOI, InvalidConfig, InvalidGrid
from ogc_upscaler.grid import ProjectedGrid, UTMGrid

from .conftest import write_config


def test_a_config_resolves_into_typed_objects(config_path) -> None:
    campaign = load_campaign(config_path)
    assert campaign.name == "test"
    assert isinstance(campaign.grid, UTMGrid) and campaign.grid.pixel_size == 20
    assert [w.key for w in campaign.windows] == ["20240101-20240201", "20240201-20240301", "20240301-20240401"]
    assert campaign.store == config_path.parent / "test.sqlite"
    assert campaign.process.application == str(config_path.parent / "app.cwl")


def test_custom_grid_parameter_sets_and_window_lists(tmp_path) -> None:
    path = write_config(
        tmp_path,
        grid={"crs": "EPSG:32633", "tile_size": 5000, "origin": [100, 200]},
        buffer=4,
        time={"windows": [{"start": "2024-06-01", "end": "2024-07-01"}, {"start": "2024-08-01", "end": "2024-09-01"}]},
        parameters={"strict": {"threshold": 0.4}, "loose": {"threshold": 0.2}},
        store="runs/x.sqlite",
    )
    campaign = load_campaign(path)
    assert isinstance(campaign.grid, ProjectedGrid)
    assert (campaign.grid.epsg, campaign.grid.origin, campaign.grid.buffer_px) == (32633, (100.0, 200.0), 4)
    assert [p.name for p in campaign.parameter_sets] == ["strict", "loose"]
    assert len(campaign.windows) == 2
    assert campaign.store == tmp_path / "runs" / "x.sqlite"


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"grdi": "utm-20km"}, InvalidConfig, "unknown key 'grdi'"),
        (
            {"time": {"start": "2024-01-01", "end": "2024-02-01", "stpe": "P1M"}},
            InvalidConfig,
            "unknown key 'time.stpe'",
        ),
        ({"aoi": None}, InvalidConfig, "missing key 'aoi'"),
        ({"resolution": "ten"}, InvalidConfig, "resolution"),
        ({"buffer": -2}, InvalidConfig, "buffer"),
        ({"time": {"start": "2024-01-01", "end": "2024-02-01"}}, InvalidConfig, "missing step"),
        ({"time": {"start": "2024-01-01", "end": "2024-02-01", "step": "monthly"}}, InvalidConfig, "ISO 8601 duration"),
        ({"grid": "utm-7km"}, InvalidGrid, "unknown grid 'utm-7km'"),
        ({"grid": {"crs": "EPSG:4326", "tile_size": 1000}}, InvalidGrid, "not a projected CRS"),
        ({"resolution": 30}, InvalidGrid, "not a whole number"),
        ({"aoi": "nowhere.geojson"}, InvalidAOI, "no such file"),
        ({"name": "bad name!"}, InvalidConfig, "name"),
        ({"parameters": {"bad name": {}}}, InvalidConfig, "parameters"),
        ({"backend": {"type": "ogcapi", "url": "http://127.0.0.1:1"}}, InvalidConfig, "missing key 'backend.process'"),
        ({"backend": {"type": "slurm"}}, InvalidConfig, "unknown backend type 'slurm'"),
        ({"backend": [{"type": "cwltool", "name": "a"}, {"name": "a"}]}, InvalidConfig, "names repeat"),
        ({"backend": {"type": "toil", "toil": {"batch_sytem": "slurm"}}}, InvalidConfig, "'backend.toil.batch_sytem'"),
        ({"retries": {"on_doubt": "pray"}}, InvalidConfig, "retries.on_doubt"),
        ({"retries": {"queue_limit": "two days"}}, InvalidConfig, "retries.queue_limit"),
        ({"time": {"start": "2024-13-01", "end": "2025-01-01", "step": "P1M"}}, InvalidConfig, "time.start"),
        ({"time": {"windows": [{"start": "2024-02-30", "end": "2024-03-01"}]}}, InvalidConfig, r"time.windows\[0\]"),
        (
            {"backend": {"type": "ogcapi", "url": "http://h", "process": "p", "auth": {"type": "bearer"}}},
            InvalidConfig,
            "needs token_env or token_file",
        ),
        (
            {"backend": {"type": "ogcapi", "url": "http://h", "process": "p", "auth": {"tokn_env": "X"}}},
            InvalidConfig,
            "unknown key 'backend.auth.tokn_env'",
        ),
        (
            {
                "backend": {
                    "type": "toil",
                    "container": "podman",
                    "toil": {"batch_system": "kubernetes", "kubernetes": {"job_store": "aws:eu-west-1:up"}},
                }
            },
            InvalidConfig,
            "container: podman cannot run inside Toil's unprivileged tile pods",
        ),
    ],
)
def test_bad_configs_name_the_key(tmp_path, overrides, error, message) -> None:
    path = write_config(tmp_path, **overrides)
    with pytest.raises(error, match=message) as err:
        load_campaign(path)
    assert str(path) in err.value.message
    assert err.value.hint
    assert err.value.exit_code == 2


def test_unknown_key_hint_lists_the_keys_of_its_section(tmp_path) -> None:
    path = write_config(tmp_path, time={"start": "2024-01-01", "end": "2024-02-01", "stpe": "P1M"})
    with pytest.raises(InvalidConfig) as err:
        load_campaign(path)
    assert "step" in err.value.hint and "windows" in err.value.hint


def test_yaml_syntax_errors_give_the_line(tmp_path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\naoi: [1, 2\ngrid: laea-20km\n")
    with pytest.raises(InvalidConfig, match=r"not valid YAML at line \d+"):
        load_campaign(path)


def test_missing_config_file(tmp_path) -> None:
    with pytest.raises(InvalidConfig, match="no such file"):
        load_campaign(tmp_path / "none.yaml")


def test_an_unknown_backend_key_lists_that_backends_keys(tmp_path) -> None:
    path = write_config(tmp_path, backend={"type": "toil", "toil": {"batch_sytem": "slurm"}})
    with pytest.raises(InvalidConfig) as err:
        load_campaign(path)
    assert "batch_system" in err.value.hint and "kubernetes" in err.value.hint


def test_each_backend_type_parses_its_own_settings(tmp_path) -> None:
    from ogc_upscaler.backends import registry

    assert set(registry.types()) >= {"cwltool", "ogcapi", "toil"}
    campaign = load_campaign(write_config(tmp_path, backend={"type": "toil", "parallel": 7}))
    assert campaign.backend.type == "toil" and campaign.backend.parallel == 7
    assert campaign.backend.toil.shared == (tmp_path / "test-runs" / "toil").resolve()
    local = load_campaign(write_config(tmp_path))
    assert local.backend.type == "cwltool" and local.backend.container == "none"


def test_retries_take_a_queue_limit_apart_from_the_running_limit(tmp_path) -> None:
    retries = {"time_limit": "PT2H", "queue_limit": "P1D", "on_doubt": "resubmit", "oom_factor": 2}
    campaign = load_campaign(write_config(tmp_path, retries=retries))
    assert campaign.retries.time_limit_s == 7200 and campaign.retries.queue_limit_s == 86400
    assert campaign.retries.on_doubt == "resubmit" and campaign.retries.oom_factor == 2
