"""``ndvi-tile``: the command line the application package runs.

Exit codes: 0 done, 2 bad input (permanent), 75 a transient failure reading
the inputs (EX_TEMPFAIL; the package declares it a temporary failure).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

import pystac
from rasterio.errors import RasterioIOError

from ndvi_tile.bands import NIR_KEYS, RED_KEYS, find_band
from ndvi_tile.catalog import write_catalog
from ndvi_tile.compute import TileGrid, composite, ndvi, read_reflectance, write_cog

BAD_INPUT = 2
TEMPORARY_FAILURE = 75


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="ndvi-tile", description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=Path, required=True, help="folder with a STAC catalog.json of input items")
    parser.add_argument("--bbox", required=True, help="xmin,ymin,xmax,ymax in the tile's CRS")
    parser.add_argument("--epsg", type=int, required=True, help="EPSG code of the tile's CRS")
    parser.add_argument("--resolution", type=float, required=True, help="pixel size in metres")
    parser.add_argument("--tile-id", required=True, help="tile id, names the outputs")
    parser.add_argument("--datetime", required=True, help="ISO 8601 interval start/end")
    parser.add_argument("--out", type=Path, default=Path("."), help="output folder")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the tool; return its exit code."""
    args = parse_args(argv)
    try:
        grid, window = _grid(args), _window(args.datetime)
        items = list(pystac.Catalog.from_file(str(args.items / "catalog.json")).get_items(recursive=True))
    except (ValueError, OSError, pystac.STACError) as err:
        print(f"ndvi-tile: bad input: {err}", file=sys.stderr)
        return BAD_INPUT
    layers, sources = [], []
    for item in items:
        red, nir = find_band(item, "red", RED_KEYS), find_band(item, "nir", NIR_KEYS)
        if red is None or nir is None:
            print(f"ndvi-tile: item {item.id} has no red or NIR asset; skipped", file=sys.stderr)
            continue
        try:
            layers.append(ndvi(read_reflectance(red, grid), read_reflectance(nir, grid)))
        except RasterioIOError as err:
            print(f"ndvi-tile: cannot read item {item.id}: {err}", file=sys.stderr)
            return TEMPORARY_FAILURE
        sources.append(item.id)
    folder = args.out / args.tile_id
    folder.mkdir(parents=True, exist_ok=True)
    cog = folder / f"{args.tile_id}_ndvi.tif"
    write_cog(str(cog), composite(layers, grid.shape), grid)
    write_catalog(folder, args.tile_id, cog, grid, window, sources)
    print(f"ndvi-tile: {args.tile_id}: NDVI of {len(sources)} items -> {cog}", file=sys.stderr)
    return 0


def _grid(args: argparse.Namespace) -> TileGrid:
    bounds = tuple(float(v) for v in args.bbox.split(","))
    if len(bounds) != 4 or bounds[0] >= bounds[2] or bounds[1] >= bounds[3]:
        raise ValueError(f"--bbox {args.bbox!r} is not xmin,ymin,xmax,ymax")
    if args.resolution <= 0:
        raise ValueError("--resolution must be positive")
    return TileGrid(args.epsg, bounds, args.resolution)  # type: ignore[arg-type]


def _window(text: str) -> tuple[datetime, datetime]:
    start, end = (datetime.fromisoformat(v.replace("Z", "+00:00")) for v in text.split("/"))
    return start, end


if __name__ == "__main__":
    sys.exit(main())
