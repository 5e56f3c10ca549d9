"""The output STAC catalog: one item per tile with the NDVI COG as its data asset."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pystac
from pystac.extensions.projection import ProjectionExtension
from rasterio.crs import CRS
from rasterio.warp import transform_geom

from ndvi_tile.compute import TileGrid


def footprint(grid: TileGrid) -> dict:
    """The tile's outline in WGS84, densified so that its edges follow their true shape."""
    xmin, ymin, xmax, ymax = grid.bounds
    steps = np.linspace(0.0, 1.0, 17)
    width, height = xmax - xmin, ymax - ymin
    ring = [(xmin + width * t, ymin) for t in steps] + [(xmax, ymin + height * t) for t in steps[1:]]
    ring += [(xmax - width * t, ymax) for t in steps[1:]] + [(xmin, ymax - height * t) for t in steps[1:]]
    polygon = {"type": "Polygon", "coordinates": [ring]}
    return transform_geom(CRS.from_epsg(grid.epsg), CRS.from_epsg(4326), polygon)


def write_catalog(
    folder: Path, tile_id: str, cog: Path, grid: TileGrid, window: tuple[datetime, datetime], sources: list[str]
) -> Path:
    """Write ``folder/catalog.json`` holding one item for the tile; returns its path."""
    geometry = footprint(grid)
    coords = np.array(geometry["coordinates"][0])
    bbox = [float(coords[:, 0].min()), float(coords[:, 1].min()), float(coords[:, 0].max()), float(coords[:, 1].max())]
    start, end = window
    item = pystac.Item(
        id=f"{tile_id}-ndvi",
        geometry=geometry,
        bbox=bbox,
        datetime=start,
        properties={
            "start_datetime": start.isoformat().replace("+00:00", "Z"),
            "end_datetime": end.isoformat().replace("+00:00", "Z"),
            "ndvi:sources": sources,
        },
    )
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    proj.code = f"EPSG:{grid.epsg}"
    proj.bbox = list(grid.bounds)
    proj.shape = list(grid.shape)
    proj.transform = list(grid.transform)[:6]
    item.add_asset(
        "ndvi",
        pystac.Asset(
            href=str(cog), media_type=pystac.MediaType.COG, roles=["data"], title="NDVI (maximum-value composite)"
        ),
    )
    catalog = pystac.Catalog(id=f"{tile_id}-ndvi", description=f"NDVI composite of tile {tile_id}")
    catalog.add_item(item)
    catalog.normalize_hrefs(str(folder))
    catalog.make_all_asset_hrefs_relative()
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    return folder / "catalog.json"
