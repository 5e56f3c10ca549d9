"""The command line end to end, through the installed ``ogc-upscaler`` script."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from .conftest import PACKAGES
from .conftest import write_config as write_any_config

EXE = shutil.which("ogc-upscaler")
#: The test package's inputs, as templates: `plan` checks them against the package before writing the store.
FLAKY = {
    "application": str(PACKAGES / "flaky.cwl"),
    "inputs": {"tile_id": "{tile.id}", "bbox": "{tile.bbox}", "epsg": "{tile.epsg}", "state_dir": "counts",
               "fail_times": 0, "broken_tile": "none", "seconds": 0},
}  # fmt: skip


def write_config(folder, **overrides):
    """A campaign config whose package exists (tests/packages/flaky.cwl)."""
    return write_any_config(folder, **{"process": FLAKY, **overrides})


def run(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    assert EXE, "ogc-upscaler is not installed: pip install -e .[test]"
    return subprocess.run([EXE, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.slow
def test_grid_writes_tiles_that_read_back_as_a_grid_file(tmp_path) -> None:
    out = tmp_path / "tiles.geojson"
    result = run("grid", "--aoi", "11.6,47.6,12.4,48.2", "--grid", "utm-20km", "--resolution", "20", "-o", str(out))
    assert result.returncode == 0, result.stderr
    count = int(result.stdout.split()[0])
    assert result.stdout.startswith(f"{count} tiles of utm-20km")
    features = json.loads(out.read_text())["features"]
    assert len(features) == count > 0
    props = features[0]["properties"]
    assert {"tile_id", "crs", "bounds", "shape", "transform"} <= set(props)
    again = run("grid", "--aoi", "11.6,47.6,12.4,48.2", "--grid", str(out), "--resolution", "20")
    assert again.stdout.startswith(f"{count} tiles of")


@pytest.mark.slow
def test_plan_status_and_export(tmp_path) -> None:
    config = write_config(tmp_path)
    result = run("plan", str(config), "--map", str(tmp_path / "plan.png"))
    assert result.returncode == 0, result.stderr
    assert "= 36 jobs" in result.stdout
    status = run("status", str(config), "--json", "--map", str(tmp_path / "status.png"))
    counts = json.loads(status.stdout)
    assert counts["total"] == 36 and counts["states"]["planned"] == 36
    assert (tmp_path / "status.png").exists()
    table = run("status", str(config))
    assert "36 jobs" in table.stdout and "planned" in table.stdout
    exported = run("export", str(config), "-o", str(tmp_path / "jobs.csv"))
    assert exported.returncode == 0 and "36 jobs" in exported.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("grid", "--aoi", "10,46,11,45", "--grid", "utm-20km"), 2, "south"),
        (("grid", "--aoi", "10,45,11,46", "--grid", "hex-5km"), 2, "unknown grid"),
        (("grid", "--aoi", "10,45,11,46"), 2, "Missing option '--grid'"),
        (("plan", "missing.yaml"), 2, "no such file"),
        (("status", "CONFIG"), 1, "no such store"),
        (("export", "CONFIG", "-o", "x.xlsx"), 2, "unknown format"),
    ],
)
def test_bad_input_exits_non_zero_with_one_line_and_a_hint(tmp_path, args, code, message) -> None:
    config = write_config(tmp_path)
    if args[0] == "export":
        run("plan", str(config))
    result = run(*(str(config) if a == "CONFIG" else a for a in args), cwd=tmp_path)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    if not message.startswith("Missing"):
        lines = result.stderr.strip().splitlines()
        assert lines[0].startswith("error: ") and lines[1].startswith("hint: ") and len(lines) == 2
    assert not (tmp_path / "x.xlsx").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("process", "message"),
    [
        ({**FLAKY, "application": str(PACKAGES / "flakey.cwl")}, "flakey.cwl: no such file"),
        ({**FLAKY, "inputs": {**FLAKY["inputs"], "epsg": "EPSG:{tile.epsg}"}}, "input 'epsg' takes a int"),
        ({**FLAKY, "inputs": {**FLAKY["inputs"], "secnods": 1}}, "unknown secnods"),
    ],
)
def test_plan_checks_the_package_and_the_templates_before_writing_jobs(tmp_path, process, message) -> None:
    config = write_config(tmp_path, process=process)
    result = run("plan", str(config))
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not (tmp_path / "test-runs").exists(), "nothing ran, nothing was staged"
    fixed = run("plan", str(write_config(tmp_path)))
    assert fixed.returncode == 0 and "= 36 jobs" in fixed.stdout, "the corrected config plans without --replan"


@pytest.mark.slow
def test_a_changed_config_is_refused_with_exit_code_2(tmp_path) -> None:
    config = write_config(tmp_path)
    run("plan", str(config))
    write_config(tmp_path, resolution=10)
    refused = run("plan", str(config))
    assert refused.returncode == 2 and "--replan" in refused.stderr
    assert run("plan", str(config), "--replan").returncode == 0


def test_retry_in_doubt_sends_those_jobs_again_and_only_them(tmp_path) -> None:
    from ogc_upscaler.config import load_campaign
    from ogc_upscaler.plan import plan
    from ogc_upscaler.store import JobStore, Move, State

    config = write_config(tmp_path)
    campaign = load_campaign(config)
    with JobStore.open(campaign.store) as store:
        plan(campaign, store)
        first, second = [j.job_id for j in store.jobs()][:2]
        store.move(first, Move.SUBMIT, backend="ogcapi")
        store.move(first, Move.DOUBT, error="in doubt: the answer was lost")
        store.move(second, Move.SUBMIT, backend="ogcapi", remote_id="r")
        store.move(second, Move.FAIL, error="broken")
    result = run("retry", str(config), "--in-doubt")
    assert result.returncode == 0 and "1 jobs in doubt will be sent again" in result.stdout, result.stderr
    with JobStore.read(campaign.store) as store:
        assert store.get(first).state is State.WAITING and store.get(second).state is State.FAILED
    listed = run("status", str(config), "--jobs", "failed")
    assert second in listed.stdout and "broken" in listed.stdout
