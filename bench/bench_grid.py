"""Grid build-and-mask benchmark: a continental 20 km LAEA grid and a global 10 km UTM grid.

Run by hand: ``python bench/bench_grid.py``. Targets on a 2-core machine:
continental <= 0.1 s, global <= 10 s.
"""

from __future__ import annotations

import statistics
import sys
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
    seconds, tiles = timed(lambda: grid.tiles(globe), repeat=3)
    print(
        f"global utm-10km: {verts} vertices, land {globe.area_km2 / 1e6:.1f} M km², {len(tiles):,} tiles, "
        f"{seconds:.2f} s (target 10 s: {seconds / 10:.2f} of budget)"
    )
    seconds, _ = timed(lambda: tiles.ids, repeat=1)
    print(f"global utm-10km: tile ids for all tiles in {seconds:.2f} s (built only when asked for)")


if __name__ == "__main__":
    main()
