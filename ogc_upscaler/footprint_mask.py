"""The pixels of a tile's raster that lie outside the tile's footprint, which collection makes nodata.

A tile clipped at a UTM zone seam is processed on its whole pixel window, which runs past the seam into
the neighbour zone's tiles: without the mask, the place would be published twice, and the item's
geometry would not say where its data is. A pixel is kept when its centre is inside. Most tiles' windows
lie inside their footprint, which the header alone tells: their pixels are not read for it.
"""

from __future__ import annotations

import numpy as np
import rasterio.features
import shapely
from rasterio.io import DatasetReader

from ogc_upscaler.errors import UpscalerError
from ogc_upscaler.projection import WGS84, densify_degrees, project


class Unplaceable(UpscalerError):
    """A raster whose place cannot be compared with its tile's footprint (no CRS, or none with an EPSG code)."""


def outside_pixels(src: DatasetReader, footprint: shapely.Geometry) -> np.ndarray | None:
    """True where a pixel of ``src`` lies outside ``footprint`` (WGS84); None when none is to be dropped.

    None too for a raster that does not meet its footprint at all: it is not this tile's raster, and is
    kept as it is rather than blanked.
    """
    epsg = src.crs.to_epsg() if src.crs is not None else None
    if epsg is None:
        raise Unplaceable(
            f"the raster's CRS ({src.crs or 'none'}) has no EPSG code to compare it with its tile",
            hint="the package must write its COG in the tile's CRS (the `epsg` input)",
        )
    window = shapely.box(*src.bounds)
    native = project(densify_degrees(footprint), WGS84, epsg)
    if shapely.buffer(native, src.res[0] / 2).covers(window):  # within half a pixel: nothing to drop
        return None
    if not shapely.intersects(native, window):
        return None
    return rasterio.features.geometry_mask([native], out_shape=(src.height, src.width), transform=src.transform)


def nodata_for(dtype: np.dtype) -> float:
    """A nodata value for a raster that declares none: NaN for floats (and complex), the type's far end for
    integers."""
    if np.issubdtype(dtype, np.inexact):
        return float("nan")
    info = np.iinfo(dtype)
    return float(info.max if info.min == 0 else info.min)
