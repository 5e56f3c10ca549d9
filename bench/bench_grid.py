"""Grid build-and-mask benchmark: a continental 20 km LAEA grid, a global 10 km UTM grid over land (with a
peer measured in the same run: an independent per-zone vectorized tiling, every cell of a zone's box built
and tested, no coarse-to-fine blocks), and ``ogc-upscaler grid`` and ``ogc-upscaler plan`` on a whole-globe
box of ``utm-10km``, zone by zone.

Run by hand: ``python bench/bench_grid.py`` (``--no-globe`` skips the whole-globe commands, ~15 min and
~15 GB of disk in the temporary folder). Targets on a 2-core machine: continental <= 0.1 s; global over land
<= 5 s and <= 2 GB; the whole-globe commands in bounded memory (<= 2 GB whatever the AOI).
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import shapely
from pyproj import Transformer

sys.path.insert(0, str(Path(__file__).parent))

from shapes import continent, land

from ogc_upscaler.demo import ndvi_package
from ogc_upscaler.grid import grid_from_spec


def timed(fn, repeat: int) -> tuple[float, object]:
    """Median seconds over ``repeat`` runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def clocked(fn) -> tuple[tuple[float, float], object]:
    """Wall and CPU seconds of one call, and its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return (time.perf_counter() - wall, time.process_time() - cpu), result


def main() -> None:
    """Print figures and ratios against the targets."""
    europe = continent(12_000)
    verts = shapely.get_num_coordinates(europe.geometry)
    grid = grid_from_spec("laea-20km")
    seconds, tiles = timed(lambda: grid.tiles(europe), repeat=7)
    print(
        f"continental laea-20km: {verts} vertices, {len(tiles):,} tiles, {seconds:.3f} s "
        f"(target 0.1 s: {seconds / 0.1:.2f} of budget)"
    )

    globe = land()
    verts = shapely.get_num_coordinates(globe.geometry)
    grid = grid_from_spec("utm-10km")
    ours, peer, peak = [], [], 0.0
    for _ in range(3):  # interleaved with the peer, so both see the same machine
        (wall, cpu), tiles = clocked(lambda: grid.tiles(globe))
        ours.append((wall, cpu))
        peak = peak or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the peer ever ran
        (wall, cpu), peer_count = clocked(lambda: peer_tiles(globe.geometry, 10_000.0))
        peer.append((wall, cpu))
    wall, cpu = (statistics.median(v) for v in zip(*ours, strict=True))
    peer_wall, peer_cpu = (statistics.median(v) for v in zip(*peer, strict=True))
    print(
        f"global utm-10km: {verts} vertices, land {globe.area_km2 / 1e6:.1f} M km², {len(tiles):,} tiles, "
        f"{wall:.2f} s wall, {cpu:.2f} s CPU (target 5 s: {max(wall, cpu) / 5:.2f} of budget), "
        f"peak {peak:,.0f} MiB (target 2 GB: {peak / 2048:.2f})"
    )
    print(
        f"peer, per-zone vectorized (every cell of each zone's box tested): {peer_count:,} tiles "
        f"({'the same count' if peer_count == len(tiles) else 'ANOTHER COUNT'}), {peer_wall:.2f} s wall, "
        f"{peer_cpu:.2f} s CPU; ogc-upscaler / peer: {wall / peer_wall:.2f} wall, {cpu / peer_cpu:.2f} CPU "
        "(medians of 3, interleaved)"
    )
    seconds, _ = timed(lambda: tiles.ids, repeat=1)
    print(f"global utm-10km: tile ids for all tiles in {seconds:.2f} s (built only when asked for)")
    if "--no-globe" not in sys.argv:
        whole_globe()
        whole_globe_plan()


def peer_tiles(land: shapely.Geometry, size: float) -> int:
    """How many ``size`` m UTM cells share area with ``land``, computed without ogc-upscaler's grid code: each
    zone half's piece of land projected with pyproj, every cell of its box built and tested with prepared
    shapely predicates (intersects and not only touches), as a plain vectorized tiling does it."""
    count = 0
    for zone in range(1, 61):
        west = -180.0 + 6.0 * (zone - 1)
        for epsg, south, north in ((32600 + zone, 0.0, 84.0), (32700 + zone, -80.0, 0.0)):
            zone_box = shapely.box(west, south, west + 6.0, north)
            if not shapely.intersects(land, zone_box) or shapely.touches(land, zone_box):
                continue
            to_utm = Transformer.from_crs(4326, epsg, always_xy=True)
            piece = shapely.segmentize(shapely.intersection(land, zone_box), 0.05)
            mask = shapely.transform(piece, lambda xy, t=to_utm: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))
            shapely.prepare(mask)
            xmin, ymin, xmax, ymax = mask.bounds
            col, row = np.meshgrid(
                np.arange(np.floor(xmin / size), np.ceil(xmax / size)),
                np.arange(np.floor(ymin / size), np.ceil(ymax / size)),
            )
            x, y = col.ravel() * size, row.ravel() * size
            cells = shapely.box(x, y, x + size, y + size)
            hit = shapely.intersects(mask, cells)
            hit[hit] = ~shapely.touches(mask, cells[hit])
            count += int(hit.sum())
    return count


def _measured(command: list[str], cwd: Path) -> tuple[str, float, float, float]:
    """Run ``command`` in ``cwd``: its stdout, wall seconds, CPU seconds and peak memory in MiB (its own).

    The peak is the child's VmHWM, read while it runs: the ``ru_maxrss`` that ``wait4`` gives counts
    this (large) process too, which Linux carries into a forked child across ``exec``.
    """
    with (cwd / "stdout").open("w+") as out, (cwd / "stderr").open("w+") as err:
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err, cwd=cwd)
        peak_kb, done = 0, None
        while done is None:
            peak_kb = max(peak_kb, _high_water_kb(child.pid))
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            done = (status, usage) if pid else None
            if done is None:
                time.sleep(0.1)
        wall = time.perf_counter() - start
        status, usage = done
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode:
            raise SystemExit(f"{' '.join(command)} failed ({child.returncode}): {err.read()}")
        return out.read(), wall, usage.ru_utime + usage.ru_stime, peak_kb / 1024


def _high_water_kb(pid: int) -> int:
    """VmHWM of a running process, in kB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def whole_globe() -> None:
    """``ogc-upscaler grid`` on a whole-globe box, written to GeoJSON: wall, CPU and the command's peak memory."""
    exe = str(Path(sys.executable).with_name("ogc-upscaler"))
    with tempfile.TemporaryDirectory() as tmp:
        command = [exe, "grid", "--aoi=-180,-80,180,84", "--grid", "utm-10km", "-o", "globe.geojson"]
        out, wall, cpu, peak = _measured(command, Path(tmp))
        size = (Path(tmp) / "globe.geojson").stat().st_size / 2**30
    print(
        f"whole-globe box, `ogc-upscaler grid --grid utm-10km -o`: {out.splitlines()[0]}; "
        f"{size:.1f} GiB written in {wall:.0f} s wall, {cpu:.0f} s CPU, "
        f"peak {peak:,.0f} MiB (target 2 GB: {peak / 2048:.2f})"
    )


GLOBE_PLAN = """name: globe
aoi: "-180,-80,180,84"
grid: utm-10km
time: {start: 2024-04-01, end: 2024-05-01, step: P1M}
process:
  application: ndvi.cwl
  inputs: {items: [], bbox: "{tile.bbox}", epsg: "{tile.epsg}", resolution: "{tile.pixel_size}",
           tile_id: "{tile.id}", datetime: "{window.interval}"}
backend: {type: cwltool}
store: globe.sqlite
"""


def whole_globe_plan() -> None:
    """``ogc-upscaler plan`` of one window on a whole-globe box (each job checked against the demo's NDVI
    package), then the same plan again (nothing to add): wall, CPU, peak memory, jobs per second."""
    exe = str(Path(sys.executable).with_name("ogc-upscaler"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shutil.copyfile(ndvi_package(), folder / "ndvi.cwl")
        (folder / "globe.yaml").write_text(GLOBE_PLAN)
        for label in ("whole-globe box, `ogc-upscaler plan` of utm-10km", "the same plan again"):
            out, wall, cpu, peak = _measured([exe, "plan", "globe.yaml"], folder)
            jobs = int(out.splitlines()[1].split(" = ")[1].split()[0].replace(",", ""))
            size = (folder / "globe.sqlite").stat().st_size / 2**30
            print(
                f"{label}: {jobs:,} jobs ({out.splitlines()[3]}), {wall:.0f} s wall, {cpu:.0f} s CPU, "
                f"{jobs / wall:,.0f} jobs/s, store {size:.1f} GiB, peak {peak:,.0f} MiB "
                f"(target 2 GB: {peak / 2048:.2f})"
            )


if __name__ == "__main__":
    main()
