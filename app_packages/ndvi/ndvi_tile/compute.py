"""The NDVI composite: windowed, reprojected reads onto the tile grid; greenest valid value per pixel."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT

from ndvi_tile.bands import Band

NODATA = -9999.0


@dataclass(frozen=True)
class TileGrid:
    """The pixel grid of the tile: CRS, bounds on pixel multiples, pixel size."""

    epsg: int
    bounds: tuple[float, float, float, float]
    resolution: float

    @property
    def shape(self) -> tuple[int, int]:
        """Rows and columns."""
        xmin, ymin, xmax, ymax = self.bounds
        return round((ymax - ymin) / self.resolution), round((xmax - xmin) / self.resolution)

    @property
    def transform(self) -> Affine:
        """The affine geotransform of the tile's upper-left pixel corner."""
        return Affine(self.resolution, 0.0, self.bounds[0], 0.0, -self.resolution, self.bounds[3])


def read_reflectance(band: Band, grid: TileGrid) -> np.ndarray:
    """The band over the tile only, resampled onto the tile's grid; NaN where there is no data.

    A WarpedVRT with the tile's transform and shape makes GDAL read just the
    source blocks under the tile (and the right overview level), not the scene.
    """
    rows, cols = grid.shape
    with rasterio.open(band.href) as src:
        nodata = band.nodata if band.nodata is not None else src.nodata
        vrt_options = {
            "crs": CRS.from_epsg(grid.epsg),
            "transform": grid.transform,
            "width": cols,
            "height": rows,
            "resampling": Resampling.bilinear,
            "src_nodata": nodata,
            "nodata": nodata,
        }
        with WarpedVRT(src, **vrt_options) as vrt:
            values = vrt.read(1, masked=True)
    data = values.astype("float32").filled(np.nan)
    return data * band.scale + band.offset


def ndvi(red: np.ndarray, nir: np.ndarray) -> np.ndarray:
    """(NIR - red) / (NIR + red); NaN where either is missing or the sum is not positive."""
    total = nir + red
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (nir - red) / total
    out[~np.isfinite(out) | ~(total > 0)] = np.nan
    return np.clip(out, -1.0, 1.0)


def composite(layers: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Maximum-value composite: the greenest valid NDVI per pixel, NaN where no layer has data."""
    if not layers:
        return np.full(shape, np.nan, dtype="float32")
    stack = np.stack(layers)
    valid = np.isfinite(stack)
    best = np.where(valid, stack, -np.inf).max(axis=0)
    return np.where(valid.any(axis=0), best, np.nan).astype("float32")


def write_cog(path: str, values: np.ndarray, grid: TileGrid) -> None:
    """Write the NDVI as a Cloud-Optimized GeoTIFF (float32, NODATA for no data)."""
    rows, cols = grid.shape
    profile = {
        "driver": "COG",
        "width": cols,
        "height": rows,
        "count": 1,
        "dtype": "float32",
        "crs": CRS.from_epsg(grid.epsg),
        "transform": grid.transform,
        "nodata": NODATA,
        "compress": "DEFLATE",
        "predictor": 3,
        "blocksize": 256,
        "overview_resampling": "average",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.where(np.isfinite(values), values, NODATA).astype("float32"), 1)
        dst.set_band_description(1, "ndvi")
