"""Small builders shared by the tests: campaign config files and AOIs written to a temp folder."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .servers.loopback import (
    S3Server,
    free_port,
    running_s3_server,
    running_server,
    running_stac_transactions_api,
)

AOI_SQUARE = {
    "type": "Polygon",
    "coordinates": [[[11.8, 47.8], [12.2, 47.8], [12.2, 48.1], [11.8, 48.1], [11.8, 47.8]]],
}


def write_config(folder: Path, **overrides: Any) -> Path:
    """A campaign config in ``folder`` (AOI file beside it); keys in ``overrides`` replace the defaults."""
    (folder / "aoi.geojson").write_text(json.dumps(AOI_SQUARE))
    config: dict[str, Any] = {
        "name": "test",
        "aoi": "aoi.geojson",
        "grid": "utm-20km",
        "resolution": 20,
        "time": {"start": "2024-01-01", "end": "2024-04-01", "step": "P1M"},
        "process": {"application": "app.cwl", "inputs": {"bbox": "{tile.bbox}", "epsg": "{tile.epsg}"}},
    }
    config.update(overrides)
    config = {k: v for k, v in config.items() if v is not None}
    path = folder / "campaign.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """The default test campaign's config file."""
    return write_config(tmp_path)


PACKAGES = Path(__file__).parent / "packages"


@pytest.fixture(scope="session")
def demo_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic demo archive, written once per test session; returns its catalog.json."""
    from ogc_upscaler.demo import write_archive

    return write_archive(tmp_path_factory.mktemp("archive"))


@pytest.fixture(scope="session")
def stac_api(demo_archive: Path) -> Iterator[str]:
    """A real STAC API (rustac serve, memory backend) on loopback serving the demo archive; its URL."""
    import shutil

    exe = shutil.which("rustac")
    assert exe, "rustac is not installed: pip install -e .[test]"
    port = free_port()
    folder = demo_archive.parent / "demo-s2-l2a"
    url = f"http://127.0.0.1:{port}"
    command = [exe, "serve", "--addr", f"127.0.0.1:{port}", "--load-collection-items", "collection.json"]
    with running_server(command, url + "/conformance", "rustac serve", cwd=folder):
        yield url


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3-compatible server on loopback for the session (:func:`running_s3_server`)."""
    with running_s3_server(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture(scope="session")
def archive_bucket(s3_server, demo_archive) -> str:
    """The session's demo archive (catalog, items, COGs; relative hrefs) uploaded as it is; its catalog's href."""
    import mimetypes

    from ogc_upscaler.bucket import Bucket, S3Output

    name = s3_server.make_bucket("archive-inputs")
    env = {"AWS_ACCESS_KEY_ID": s3_server.key, "AWS_SECRET_ACCESS_KEY": s3_server.secret}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        bucket = Bucket(S3Output(f"s3://{name}/s2", endpoint_url=s3_server.endpoint))
        root = demo_archive.parent
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            bucket.upload(path, path.relative_to(root).as_posix(), kind)
    return f"s3://{name}/s2/catalog.json"


@pytest.fixture(scope="session")
def stac_transactions_api() -> Iterator[str]:
    """A real STAC API with transactions on loopback for the session (:func:`running_stac_transactions_api`)."""
    with running_stac_transactions_api() as url:
        yield url


@pytest.fixture(scope="session")
def offline_stac_validator() -> Iterator[None]:
    """pystac validation with the STAC extension schemas preloaded from tests/data, so nothing is fetched."""
    import pystac.validation
    from pystac.validation.stac_validator import JsonSchemaSTACValidator

    validator = JsonSchemaSTACValidator()
    root = Path(__file__).parent / "data" / "stac-schemas"
    for schema in root.glob("*/*/schema.json"):
        name, version = schema.parent.parent.name, schema.parent.name
        url = f"https://stac-extensions.github.io/{name}/{version}/schema.json"
        validator.schema_cache[url] = json.loads(schema.read_text())
    pystac.validation.set_validator(validator)
    yield
    pystac.validation.set_validator(JsonSchemaSTACValidator())


@pytest.fixture(scope="session")
def pygeoapi_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """pygeoapi 0.21 serving its hello-world process on loopback (TinyDB jobs, async); its URL."""
    with _pygeoapi(tmp_path_factory.mktemp("pygeoapi"), Path(__file__).parent / "servers" / "pygeoapi.yml") as url:
        yield url


@pytest.fixture(scope="session")
def pygeoapi_sync_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """pygeoapi 0.21 with its default Dummy manager: every execution synchronous, no jobs kept; its URL."""
    state = tmp_path_factory.mktemp("pygeoapi-sync")
    config = yaml.safe_load((Path(__file__).parent / "servers" / "pygeoapi.yml").read_text())
    del config["server"]["manager"]
    (state / "pygeoapi.yml").write_text(yaml.safe_dump(config))
    with _pygeoapi(state, state / "pygeoapi.yml") as url:
        yield url


@contextlib.contextmanager
def _pygeoapi(state: Path, config: Path) -> Iterator[str]:
    import os
    import shutil
    import subprocess
    import sys

    (state / "outputs").mkdir()
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "STATE": str(state),
        "PYGEOAPI_CONFIG": str(config),
        "PYGEOAPI_OPENAPI": str(state / "openapi.yml"),
    }
    exe = shutil.which("pygeoapi", path=str(Path(sys.executable).parent)) or shutil.which("pygeoapi")
    assert exe, "pygeoapi is not installed: pip install -e .[test]"
    subprocess.run(
        [exe, "openapi", "generate", env["PYGEOAPI_CONFIG"], "--output-file", env["PYGEOAPI_OPENAPI"]],
        env=env,
        check=True,
        capture_output=True,
    )
    url = f"http://127.0.0.1:{port}"
    with running_server([exe, "serve"], url + "/conformance?f=json", "pygeoapi", env=env):
        yield url


@contextlib.contextmanager
def running_endpoint(
    state: Path,
    data_roots: tuple[Path, ...],
    *,
    gunicorn: bool = False,
    port: int | None = None,
    packages: tuple[Path, ...] | None = None,
    **settings: Any,
) -> Iterator[str]:
    """Our endpoint on loopback (the demo's package and tests/packages/flaky.cwl): `ogc-upscaler serve`,
    or the README's gunicorn command; its URL. ``settings`` go to ServerSettings (e.g. max_restarts, or
    allow_internal_urls=True for a STAC API on loopback), and to `serve` as its options."""
    import os
    import sys

    from ogc_upscaler.server.settings import ServerSettings, prepare

    options = {
        "allow_internal_urls": "--allow-internal-urls",
        "max_tiles": "--max-tiles",
        "max_restarts": "--max-restarts",
        "parallel": "--parallel",
        "container": "--container",
        "watched": "--watch",
    }
    unknown = sorted(set(settings) - set(options))
    assert not unknown, f"running_endpoint: no serve option for {unknown}"
    port = port or free_port()
    packages = packages or (Path(__file__).parents[1] / "app_packages", PACKAGES / "flaky.cwl")
    env = dict(os.environ)
    if gunicorn:
        config = ServerSettings(state=state, packages=packages, data_roots=data_roots, port=port, **settings)
        env.update(prepare(config))  # serve prepares for itself, from its options
        exe = Path(sys.executable).with_name("gunicorn")
        assert exe.exists(), "gunicorn is not installed: pip install -e .[test]"
        command = [
            str(exe),
            "--workers",
            "2",
            "--threads",
            "4",
            "--bind",
            f"127.0.0.1:{port}",
            "ogc_upscaler.server.app:APP",
        ]
    else:
        command = [
            str(Path(sys.executable).with_name("ogc-upscaler")),
            "serve",
            "--state",
            str(state),
            "--port",
            str(port),
        ]
        command += [arg for p in packages for arg in ("--packages", str(p))]
        command += [arg for r in data_roots for arg in ("--data-root", str(r))]
        for key, value in settings.items():
            if isinstance(value, tuple):
                command += [arg for v in value for arg in (options[key], str(v))]
            elif value is True:
                command.append(options[key])
            elif value is not False:
                command += [options[key], str(value)]
    url = f"http://127.0.0.1:{port}"
    with running_server(command, url + "/conformance?f=json", "endpoint", env=env):
        yield url


@pytest.fixture(scope="session")
def slurm() -> Iterator[None]:
    """A real single-node SLURM (Debian's slurm-wlm and munge), started by scripts/slurm.sh as root when it
    is not up already, and stopped at the end of the session if this fixture started it."""
    import subprocess

    script = Path(__file__).parents[1] / "scripts" / "slurm.sh"
    up = subprocess.run(["bash", str(script), "status"], capture_output=True).returncode == 0
    if not up:
        started = subprocess.run(["bash", str(script), "start"], capture_output=True, text=True, timeout=600)
        assert started.returncode == 0, f"scripts/slurm.sh start failed: {started.stderr}{started.stdout}"
    yield
    if not up:
        subprocess.run(["bash", str(script), "stop"], capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def podman() -> Iterator[None]:
    """Podman as root with the demo package's image (localhost/ndvi-tile:0.1.0), set up by scripts/podman.sh
    (installed, configured and built on first use, then cached); its configuration is exported for the
    session, so cwltool, Toil's leaders and the SLURM jobs they submit all find it."""
    import os
    import subprocess

    script = Path(__file__).parents[1] / "scripts" / "podman.sh"
    setup = subprocess.run(["bash", str(script), "setup"], capture_output=True, text=True, timeout=1200)
    assert setup.returncode == 0, f"scripts/podman.sh setup failed: {setup.stderr}{setup.stdout}"
    exports = subprocess.run(["bash", str(script), "env"], capture_output=True, text=True, check=True).stdout
    variables = dict(line.removeprefix("export ").split("=", 1) for line in exports.splitlines())
    before = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    yield
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def demo_config(folder: Path, archive: Path, **overrides: Any) -> Path:
    """The demo campaign over its first month (13 tile jobs), reading the session's demo archive."""
    from ogc_upscaler.demo import write_campaign

    path = write_campaign(folder)
    config = yaml.safe_load(path.read_text())
    config["inputs"]["stac"] = str(archive)
    config["time"] = {"start": "2024-04-01", "end": "2024-05-01", "step": "P1M"}
    config.update(overrides)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def checked_ndvi(cog: Path, month: int, rng: Any, samples: int) -> int:
    """Check ``samples`` random pixels of a demo NDVI COG against the demo's known answer for ``month``
    (skipping class edges, resampled where scenes of the other zone overlap); how many were checked."""
    import numpy as np
    import pytest
    import rasterio
    from pyproj import Transformer

    from ogc_upscaler.demo import expected_ndvi, land_cover

    with rasterio.open(cog) as src:
        values = src.read(1, masked=True)
        rows, cols = rng.integers(0, src.height, samples), rng.integers(0, src.width, samples)
        xs, ys = rasterio.transform.xy(src.transform, rows, cols)
        lon, lat = Transformer.from_crs(src.crs, 4326, always_xy=True).transform(xs, ys)
    checked = 0
    for r, c, x, y in zip(rows, cols, lon, lat, strict=True):
        around = land_cover(np.array([x, x + 0.0006, x - 0.0006, x, x]), np.array([y, y, y, y + 0.0004, y - 0.0004]))
        if values.mask[r, c] or len(set(around.tolist())) > 1:
            continue
        assert values[r, c] == pytest.approx(expected_ndvi(x, y, months=(month,)), abs=1e-4), (cog.name, x, y)
        checked += 1
    return checked


def wait_for(condition: Any, timeout: float = 120.0) -> None:
    """Poll ``condition()`` until it is true; fail after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


#: Debian's Chromium, as scripts/test.sh installs it; Playwright drives it and never downloads its own.
CHROMIUM = "/usr/bin/chromium"
#: Flags for a headless Chromium on a machine with no screen and a closed network (its background
#: connections are refused by the machine, many at a time, without the last four).
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Where tests leave what a person may want to look at after a run (screenshots).
ARTEFACTS = Path(__file__).parent.parent / "test-artefacts"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session's page tests."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: scripts/test.sh installs Debian's chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
