"""The README's examples work as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import write_config

README = Path(__file__).parent.parent / "README.md"


def test_the_python_api_example_runs(tmp_path, monkeypatch, capsys) -> None:
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if "plan(campaign" in b]
    write_config(tmp_path)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "= 36 jobs" in out and "'planned': 36" in out


@pytest.mark.slow
def test_the_job_hooks_example_runs(tmp_path, monkeypatch, capsys) -> None:
    from .backends.test_cwltool import flaky_config

    (block,) = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if "on_job_done" in b]
    (tmp_path / "demo").mkdir()
    flaky_config(tmp_path / "demo", aoi="11.9,47.8,12.1,47.95").rename(tmp_path / "demo" / "demo.yaml")
    monkeypatch.chdir(tmp_path)
    names: dict = {}
    exec(compile(block, "README.md", "exec"), names)
    assert capsys.readouterr().out.strip().endswith("jobs collected, exit code 0")
    assert names["collected"] and all(cog and cog.endswith(".tif") for _, cog, _ in names["collected"])


def test_the_campaign_config_example_parses(tmp_path) -> None:
    from ogc_upscaler.config import load_campaign

    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S) if "name: alps-ndvi" in b]
    (tmp_path / "alps.geojson").write_text('{"type": "Polygon", "coordinates": [[[10,46],[11,46],[11,47],[10,46]]]}')
    (tmp_path / "campaign.yaml").write_text(block)
    campaign = load_campaign(tmp_path / "campaign.yaml")
    assert campaign.name == "alps-ndvi" and len(campaign.windows) == 12 and len(campaign.parameter_sets) == 2


def test_the_ogcapi_backend_example_is_a_valid_backend_config() -> None:
    import yaml

    from ogc_upscaler.backends import registry

    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S) if "type: ogcapi" in b]
    backend = registry.parse(yaml.safe_load(block)["backend"])
    assert backend.type == "ogcapi" and backend.auth.type == "bearer" and backend.requests_per_second == 5


def test_the_production_server_command_is_what_prepare_only_prints(tmp_path) -> None:
    from click.testing import CliRunner

    from ogc_upscaler.cli import cli

    text = README.read_text()
    printed = re.search(r"# prints: (.*?)\n#\s+(gunicorn .*?)\n", text)
    assert printed, "the README shows the printed command"
    packages = str(Path(__file__).parent.parent / "app_packages")
    args = ["serve", "--state", str(tmp_path / "srv"), "--packages", packages, "--host", "0.0.0.0", "--port", "5000",
            "--prepare-only"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    expected = printed[1].replace("/srv/upscaler", str(tmp_path / "srv")).rstrip(" \\") + " " + printed[2]
    assert result.output.strip() == expected
    assert (tmp_path / "srv" / "pygeoapi.yml").is_file() and (tmp_path / "srv" / "openapi.yml").is_file()


def test_the_hpc_backend_example_is_a_valid_backend_config() -> None:
    import yaml

    from ogc_upscaler.backends import registry

    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S) if "type: toil" in b]
    backend = registry.parse(yaml.safe_load(block)["backend"])
    assert backend.toil is not None and backend.toil.batch_system == "slurm" and backend.toil.slurm.time == "02:00:00"
