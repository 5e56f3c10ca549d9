"""Results delivered where productions keep them: N items collected, uploaded to an S3-compatible store and
published to a STAC API with transactions, all on loopback; then the same campaign SIGKILLed and resumed.

Run by hand: ``python bench/bench_deliver.py`` (10,000 items: about 15-25 minutes on 2 cores;
``--items N`` for another size). It starts the servers the tests start (``tests/servers/loopback.py``):
ministack with signatures checked (scripts/test.sh makes ``.venv-s3``) and stac-fastapi-pgstac on Debian's
PostgreSQL 15 with PostGIS.

Each campaign is a 1 km grid (``EPSG:32632:1000`` at 10 m: 100 x 100 px tiles) over a bbox of about N
tiles, one window, output ``s3://…`` and ``publish:``. Its jobs run through an in-process backend writing
what a package writes (a float32 DEFLATE COG of the demo's landscape and its STAC catalog) at once, so
the figures are the manager's, the collector's and the delivery's own: ``ogc-upscaler run`` as a
subprocess (the manager), whose wall and CPU time, items per second and peak memory are printed.

The second campaign is SIGKILLed at ``--kills`` points (shares of the items collected) and started again
until it ends by itself. Both are then checked from outside: every job collected; the bucket holds
exactly the local catalog's files, key for key (no object twice, none missing, none left over), each
the same bytes; the API holds exactly one item per collected job (searched with pystac-client), and
``ogc-upscaler catalog --publish`` afterwards puts nothing new. No peer runs: openEO's job manager has
no delivery of its own to S3 or a STAC API to compare with.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "servers"))

from loopback import S3Server, running_s3_server, running_stac_transactions_api  # noqa: E402

WEST, SOUTH = 9.0, 45.0  # zone 32N
GRID, RESOLUTION, SIZE = "EPSG:32632:1000", 10, 100


def config(folder: Path, name: str, items: int, s3: S3Server, api: str) -> Path:
    """The campaign of about ``items`` jobs, delivered to its own bucket and collection."""
    side = int(np.ceil(np.sqrt(items)))  # tiles per side, 1 km each
    east = WEST + side / (111.32 * np.cos(np.radians(SOUTH + side / 222.0)))
    north = SOUTH + (items / side) / 111.0
    bucket = s3.make_bucket(f"bench-{name}")
    settings = {
        "name": name,
        "aoi": f"{WEST},{SOUTH},{east:.6f},{north:.6f}",
        "grid": GRID,
        "resolution": RESOLUTION,
        "time": {"start": "2024-06-01", "end": "2024-07-01", "step": "P1M"},
        "process": {"inputs": {}},
        "retries": {"attempts": 3, "backoff": 0.1, "on_doubt": "resubmit"},  # the in-process run is idempotent
        "output": {"url": f"s3://{bucket}/ndvi", "endpoint_url": s3.endpoint},
        "publish": {"stac_api": api, "collection": name},
    }
    folder.mkdir(parents=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


# -- the manager's process ------------------------------------------------------------------------


def child(config_path: Path) -> None:
    """``ogc-upscaler run`` with an in-process backend that writes each job's COG and catalog at once."""
    import rasterio
    from rasterio.session import DummySession
    from rasterio.transform import from_origin

    from ogc_upscaler.backends.base import JobRequest
    from ogc_upscaler.backends.inprocess import InProcessBackend
    from ogc_upscaler.config import load_campaign
    from ogc_upscaler.demo import land_cover
    from ogc_upscaler.run import run_campaign

    campaign = load_campaign(config_path)
    outputs = campaign.workdir / "outputs"

    def package(job: JobRequest) -> Path:
        folder = outputs / job.job_id
        folder.mkdir(parents=True, exist_ok=True)
        seed = sum(job.job_id.encode())
        x, y = np.meshgrid(np.linspace(9.0, 9.01, SIZE), np.linspace(45.0, 45.01, SIZE))
        values = (land_cover(x + seed * 1e-3, y).astype("float32") / 3.0 - 0.2)[None]
        values[:, :8, :8] = -9999.0
        profile = {
            "driver": "COG", "width": SIZE, "height": SIZE, "count": 1, "dtype": "float32", "nodata": -9999.0,
            "crs": "EPSG:32632", "transform": from_origin(500_000 + seed, 5_000_000, RESOLUTION, RESOLUTION),
            "compress": "DEFLATE", "predictor": 3, "blocksize": 256,
        }  # fmt: skip
        with rasterio.Env(session=DummySession()), rasterio.open(folder / "ndvi.tif", "w", **profile) as dst:
            dst.write(values)
        asset = {"href": "../ndvi.tif", "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                 "roles": ["data"]}  # fmt: skip
        item = {"type": "Feature", "stac_version": "1.1.0", "id": job.job_id, "geometry": None, "links": [],
                "properties": {"datetime": "2024-06-15T00:00:00Z"}, "assets": {"data": asset}}  # fmt: skip
        (folder / "item").mkdir(exist_ok=True)
        (folder / "item" / "item.json").write_text(json.dumps(item))
        links = [{"rel": "item", "href": "./item/item.json", "type": "application/geo+json"}]
        catalog = {"type": "Catalog", "id": job.job_id, "stac_version": "1.1.0", "description": "out", "links": links}
        (folder / "catalog.json").write_text(json.dumps(catalog))
        return folder / "catalog.json"

    result = run_campaign(campaign, backend=InProcessBackend(package, slots=32))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures = {"peak_rss_mib": usage.ru_maxrss / 1024, "cpu_s": usage.ru_utime + usage.ru_stime}
    (campaign.workdir / "manager.json").write_text(json.dumps({**figures, "exit": result.exit_code}))


# -- from outside ---------------------------------------------------------------------------------


def collected(store: Path) -> int:
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30) as db:
            return db.execute("SELECT count(*) FROM jobs WHERE state = 'collected'").fetchone()[0]
    except sqlite3.Error:
        return 0


def planned(store: Path) -> int:
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30) as db:
        return db.execute("SELECT count(*) FROM jobs").fetchone()[0]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(config_path: Path, env: dict[str, str], kills: list[float], items: int) -> dict[str, Any]:
    """Run the manager until it ends by itself, SIGKILLed once the collected share passes each of ``kills``."""
    store = config_path.with_suffix(".sqlite")
    started, cpu = time.monotonic(), children_cpu()
    killed = 0
    for share in [*kills, None]:
        manager = subprocess.Popen([sys.executable, __file__, "child", str(config_path)], env=env)
        if share is None:
            if manager.wait() != 0:
                raise SystemExit(f"the manager exited with {manager.returncode}")
            break
        while manager.poll() is None and collected(store) < share * items:
            time.sleep(0.05)
        if manager.poll() is None:
            manager.send_signal(signal.SIGKILL)
            manager.wait()
            killed += 1
    wall = time.monotonic() - started
    report = json.loads((config_path.parent / f"{config_path.stem}-runs" / "manager.json").read_text())
    return {"wall_s": wall, "cpu_s": children_cpu() - cpu, "kills": killed, "last_run": report}


def check(config_path: Path, env: dict[str, str], s3: S3Server, api: str) -> dict[str, Any]:
    """The bucket against the local catalog, key for key and byte for byte; the API's items; a catalog
    --publish run afterwards."""
    import obstore
    from obstore.store import S3Store
    from pystac_client import Client

    from ogc_upscaler.config import load_campaign

    campaign = load_campaign(config_path)
    assert campaign.upload is not None
    os.environ.update({k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")})
    options = {"endpoint": s3.endpoint, "region": "us-east-1", "virtual_hosted_style_request": False}
    store = S3Store(campaign.upload.bucket, client_options={"allow_http": True}, **options)
    objects = {m["path"]: m["size"] for batch in obstore.list(store) for m in batch}
    local = {
        campaign.upload.key(p.relative_to(campaign.output).as_posix()): p
        for p in campaign.output.rglob("*")
        if p.is_file()
    }
    # the COGs are the local bytes; the JSON documents are the local ones with absolute s3:// hrefs
    cogs = [k for k in local if k.endswith(".tif")]
    differ = [k for k in local if k not in objects or (k in cogs and objects[k] != local[k].stat().st_size)]
    sample = cogs[:: max(1, len(cogs) // 200)]  # 200 COGs read back, byte for byte
    unequal = [k for k in sample if bytes(obstore.get(store, k).bytes()) != local[k].read_bytes()]
    found = [i.id for i in Client.open(api).search(collections=[campaign.name], limit=1000).items()]
    jobs = collected(config_path.with_suffix(".sqlite"))
    again = subprocess.run(
        [sys.executable, "-m", "ogc_upscaler", "catalog", str(config_path), "--publish"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    after = {m["path"]: m["e_tag"] for batch in obstore.list(store) for m in batch}
    return {
        "jobs": planned(config_path.with_suffix(".sqlite")),
        "collected": jobs,
        "objects": len(objects),
        "local_files": len(local),
        "extra_objects": len(set(objects) - set(local)),
        "missing_or_different": len(differ),
        "unequal_in_sample": len(unequal),
        "api_items": len(found),
        "api_distinct": len(set(found)),
        "objects_after_catalog_run": len(after),
        "catalog_run": again.stdout.strip().splitlines()[-1:] or [""],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--kills", type=float, nargs="*", default=[0.3, 0.7], help="shares collected at each kill")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    folder = args.workdir or Path(tempfile.mkdtemp(prefix="bench-deliver-"))
    print(f"load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; work folder {folder}", flush=True)
    with running_s3_server(folder / "s3") as s3, running_stac_transactions_api() as api:
        env = {**os.environ, **s3.credentials()}
        for name, kills in (("straight", []), ("killed", args.kills)):
            path = config(folder / name, name, args.items, s3, api)
            figures = run(path, env, kills, args.items)
            checked = check(path, env, s3, api)
            n, last = checked["collected"], figures["last_run"]
            print(f"\n{name}: {checked['jobs']:,} jobs, {figures['kills']} SIGKILL(s)")
            print(
                f"  total {figures['wall_s']:.1f} s wall, {figures['cpu_s']:.1f} s CPU of the manager(s); "
                f"{n / figures['wall_s']:.1f} items/s; {1000 * figures['cpu_s'] / max(n, 1):.2f} ms CPU/item"
            )
            print(f"  peak memory of the manager (its last run): {last['peak_rss_mib']:.0f} MiB")
            print(
                f"  collected {n:,}; bucket {checked['objects']:,} objects for {checked['local_files']:,} local "
                f"files: {checked['extra_objects']} extra, {checked['missing_or_different']} missing or "
                f"different, {checked['unequal_in_sample']} unequal of 200 read back"
            )
            print(
                f"  API: {checked['api_items']:,} items, {checked['api_distinct']:,} distinct; after "
                f"`catalog --publish`: {checked['objects_after_catalog_run']:,} objects ({checked['catalog_run'][0]})"
            )
            (folder / f"{name}.json").write_text(json.dumps({**figures, **checked}, indent=1))  # fmt: skip
            ok = n == checked["jobs"] == checked["api_items"] == checked["api_distinct"]
            ok = ok and checked["extra_objects"] == checked["missing_or_different"] == checked["unequal_in_sample"] == 0
            print(f"  {'OK' if ok else 'FAILED'}: no duplicate object, no duplicate item, nothing lost")


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        child(Path(sys.argv[2]))
    else:
        main()
