"""Grid build-and-mask benchmark: a continental 20 km LAEA grid, a global 10 km UTM grid over land, and
``ogc-upscaler grid`` writing a whole-globe box of ``utm-10km`` zone by zone.

Run by hand: ``python bench/bench_grid.py`` (``--no-globe`` skips the whole-globe command, ~3 min).
Targets on a 2-core machine: continental <= 0.1 s; global over land <= 5 s and <= 2 GB; the whole-globe
command in bounded memory (<= 2 GB whatever the AOI).
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import shapely

sys.path.insert(0, str(Path(__file__).parent))

from shapes import continent, land

from ogc_upscaler.grid import grid_from_spec


def timed(fn, repeat: int) -> tuple[float, object]:
    """Median seconds over ``repeat`` runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


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
    cpu = time.process_time()
    seconds, tiles = timed(lambda: grid.tiles(globe), repeat=3)
    cpu = (time.process_time() - cpu) / 3
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"global utm-10km: {verts} vertices, land {globe.area_km2 / 1e6:.1f} M km², {len(tiles):,} tiles, "
        f"{seconds:.2f} s wall, {cpu:.2f} s CPU (target 5 s: {max(seconds, cpu) / 5:.2f} of budget), "
        f"peak {peak:,.0f} MiB (target 2 GB: {peak / 2048:.2f})"
    )
    seconds, _ = timed(lambda: tiles.ids, repeat=1)
    print(f"global utm-10km: tile ids for all tiles in {seconds:.2f} s (built only when asked for)")
    if "--no-globe" not in sys.argv:
        whole_globe()


def whole_globe() -> None:
    """``ogc-upscaler grid`` on a whole-globe box, written to GeoJSON: wall, CPU and the command's peak memory."""
    exe = str(Path(sys.executable).with_name("ogc-upscaler"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "globe.geojson"
        start = time.perf_counter()
        done = subprocess.run(
            [exe, "grid", "--aoi=-180,-80,180,84", "--grid", "utm-10km", "-o", str(out)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        wall = time.perf_counter() - start
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        size = out.stat().st_size / 2**30
    peak = usage.ru_maxrss / 1024
    print(
        f"whole-globe box, `ogc-upscaler grid --grid utm-10km -o`: {done.stdout.splitlines()[0]}; "
        f"{size:.1f} GiB written in {wall:.0f} s wall, {usage.ru_utime + usage.ru_stime:.0f} s CPU, "
        f"peak {peak:,.0f} MiB (target 2 GB: {peak / 2048:.2f})"
    )


if __name__ == "__main__":
    main()
