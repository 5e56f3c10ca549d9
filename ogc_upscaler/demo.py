"""The demo: a synthetic Sentinel-2-like archive made on the spot, and the campaign that uses it.

Nothing is downloaded, ever. The archive holds one scene per UTM zone (32 and
33, either side of 12°E) per month, each with red (B04) and near-infrared (B08)
bands as Cloud-Optimized GeoTIFFs on the zone's own 20 m grid, and a static
STAC catalog of them. The landscape is one ground truth in longitude/latitude
(a lake, a river, forest, and crop parcels whose greenness follows the season),
so both zones agree where they overlap and NDVI values are known exactly:
:func:`expected_ndvi` gives them.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import numpy as np
import pystac
import rasterio
import shapely
from pystac.extensions.eo import Band, EOExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, RasterBand, RasterExtension
from rasterio.crs import CRS
from rasterio.transform import from_origin

from ogc_upscaler.errors import InvalidConfig
from ogc_upscaler.projection import project, transformer

RESOLUTION = 20.0
MONTHS = (4, 5, 6)
YEAR = 2024
SCALE = 0.0001
COLLECTION = "demo-s2-l2a"

#: Surface reflectance (red, NIR) per land-cover class; crops change with the month.
WATER = (0.030, 0.015)
FOREST = (0.025, 0.380)
CROPS = {4: (0.090, 0.180), 5: (0.050, 0.300), 6: (0.030, 0.420)}
MEADOW = {4: (0.050, 0.250), 5: (0.040, 0.330), 6: (0.045, 0.300)}
CLASSES = ("water", "forest", "crops", "meadow")


@dataclass(frozen=True)
class Scene:
    """One synthetic acquisition: a zone, a date, native bounds on the 20 m grid."""

    zone: int
    when: datetime
    bounds: tuple[float, float, float, float]

    @property
    def epsg(self) -> int:
        """The scene's UTM zone (north)."""
        return 32600 + self.zone

    @property
    def id(self) -> str:
        """An id in the style of Sentinel-2 products."""
        return f"DEMO_S2_{self.zone}N_{self.when:%Y%m%d}"


#: Scene extents in their zone's CRS (cover every demo tile, overlapping across 12°E like real tiles).
SCENE_BOUNDS = {
    32: (690_000.0, 5_270_000.0, 740_000.0, 5_350_000.0),
    33: (250_000.0, 5_270_000.0, 330_000.0, 5_350_000.0),
}


def scenes() -> list[Scene]:
    """The demo acquisitions: one per zone per month, mid-month at 10:30 UTC."""
    return [Scene(z, datetime(YEAR, m, 15, 10, 30, tzinfo=UTC), SCENE_BOUNDS[z]) for m in MONTHS for z in (32, 33)]


def land_cover(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """The class index (into :data:`CLASSES`) of each point; the same truth in every zone."""
    lake = ((lon - 12.10) / 0.045) ** 2 + ((lat - 47.93) / 0.030) ** 2 < 1.0
    river = np.abs(lat - (47.80 + 0.03 * np.sin(lon * 25.0))) < 0.0022
    relief = np.sin(lon * 31.0) * np.cos(lat * 23.0) + 0.6 * np.sin(lon * 71.0 + lat * 43.0)
    forest = relief > 0.55
    parcel = (np.floor(lon / 0.012) + np.floor(lat / 0.008)) % 3 == 0
    out = np.where(parcel, 2, 3)
    out = np.where(forest, 1, out)
    return np.where(lake | river, 0, out).astype(np.uint8)


def reflectance(classes: np.ndarray, month: int) -> tuple[np.ndarray, np.ndarray]:
    """Red and NIR surface reflectance of each class in ``month``."""
    table = np.array([WATER, FOREST, CROPS[month], MEADOW[month]], dtype=np.float64)
    return table[classes, 0], table[classes, 1]


def expected_ndvi(lon: float, lat: float, months: tuple[int, ...] = MONTHS) -> float:
    """The NDVI the demo's maximum-value composite gives at a point, over ``months``."""
    klass = land_cover(np.array([lon]), np.array([lat]))
    values = []
    for month in months:
        red, nir = reflectance(klass, month)
        red, nir = np.round(red / SCALE) * SCALE, np.round(nir / SCALE) * SCALE
        values.append(float(((nir - red) / (nir + red))[0]))
    return max(values)


def write_archive(folder: Path) -> Path:
    """Write the archive (COGs and a static STAC catalog) into ``folder``; returns the catalog path."""
    folder = folder.resolve()  # pystac makes asset hrefs relative to the items: start from absolute paths
    folder.mkdir(parents=True, exist_ok=True)
    catalog = pystac.Catalog(id="demo-archive", description="Synthetic Sentinel-2-like scenes for the demo")
    collection = pystac.Collection(
        id=COLLECTION,
        description="Synthetic Sentinel-2 L2A-like red and NIR bands at 20 m over the demo area",
        extent=pystac.Extent(
            pystac.SpatialExtent([[11.4, 47.5, 12.9, 48.3]]),
            pystac.TemporalExtent([[scenes()[0].when, scenes()[-1].when]]),
        ),
        license="CC0-1.0",
    )
    catalog.add_child(collection)
    classes = {zone: _classes(bounds, 32600 + zone) for zone, bounds in SCENE_BOUNDS.items()}
    for scene in scenes():
        collection.add_item(_write_scene(folder / COLLECTION / scene.id, scene, classes[scene.zone]))
    catalog.normalize_hrefs(str(folder))
    catalog.make_all_asset_hrefs_relative()
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    return folder / "catalog.json"


def write_campaign(folder: Path) -> Path:
    """Write the demo config, AOI and NDVI package into ``folder`` (keeping any already there); returns the config."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("demo.yaml", "demo-aoi.geojson"):
        if not (folder / name).exists():
            with resources.as_file(resources.files("ogc_upscaler") / "data" / name) as src:
                shutil.copyfile(src, folder / name)
    if not (folder / "ndvi.cwl").exists():
        shutil.copyfile(ndvi_package(), folder / "ndvi.cwl")
    return folder / "demo.yaml"


def ndvi_package() -> Path:
    """The NDVI application package's CWL file, beside its installed tool."""
    try:
        import ndvi_tile
    except ImportError:
        raise InvalidConfig(
            "the demo's NDVI tool is not installed", hint="pip install -e app_packages/ndvi (scripts/demo.sh does)"
        ) from None
    path = Path(ndvi_tile.__file__).resolve().parent.parent / "ndvi.cwl"
    if not path.is_file():
        raise InvalidConfig(f"the NDVI package {path} is missing", hint="pip install -e app_packages/ndvi")
    return path


def _classes(bounds: tuple[float, float, float, float], epsg: int, step: int = 16) -> np.ndarray:
    """Land cover on the scene's pixel grid.

    Longitude and latitude are computed on a lattice every ``step`` pixels and
    interpolated bilinearly in between: the projection is smooth enough that the
    error stays far below a millimetre, at a fraction of the cost.
    """
    xmin, ymin, xmax, ymax = bounds
    cols, rows = round((xmax - xmin) / RESOLUTION), round((ymax - ymin) / RESOLUTION)
    cc, rc = np.arange(0, cols + step, step), np.arange(0, rows + step, step)
    xx, yy = np.meshgrid(xmin + (cc + 0.5) * RESOLUTION, ymax - (rc + 0.5) * RESOLUTION)
    lon_c, lat_c = (np.asarray(v).reshape(xx.shape) for v in transformer(epsg, 4326).transform(xx, yy))
    lon, lat = _bilinear(lon_c, rows, cols, step), _bilinear(lat_c, rows, cols, step)
    return land_cover(lon, lat)


def _bilinear(coarse: np.ndarray, rows: int, cols: int, step: int) -> np.ndarray:
    c, r = np.arange(cols), np.arange(rows)
    ci, cf = c // step, (c % step) / step
    ri, rf = r // step, (r % step) / step
    along = coarse[:, ci] * (1 - cf) + coarse[:, ci + 1] * cf
    return along[ri, :] * (1 - rf)[:, None] + along[ri + 1, :] * rf[:, None]


def _write_scene(folder: Path, scene: Scene, classes: np.ndarray) -> pystac.Item:
    folder.mkdir(parents=True, exist_ok=True)
    red, nir = reflectance(classes, scene.when.month)
    swath = _swath(scene, classes.shape)
    xmin, _, _, ymax = scene.bounds
    transform = from_origin(xmin, ymax, RESOLUTION, RESOLUTION)
    footprint = project(shapely.segmentize(shapely.box(*scene.bounds), 2000.0), scene.epsg, 4326)
    item = pystac.Item(
        id=scene.id,
        geometry=footprint.__geo_interface__,
        bbox=list(footprint.bounds),
        datetime=scene.when,
        properties={"platform": "demo-sentinel-2", "constellation": "demo"},
    )
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    proj.code, proj.bbox, proj.shape = f"EPSG:{scene.epsg}", list(scene.bounds), list(classes.shape)
    proj.transform = list(transform)[:6]
    EOExtension.add_to(item)
    RasterExtension.add_to(item)
    for key, name, values in (("B04", "red", red), ("B08", "nir", nir)):
        dn = np.where(swath, np.round(values / SCALE), 0).astype(np.uint16)
        path = folder / f"{scene.id}_{key}.tif"
        _write_cog(path, dn, scene.epsg, transform)
        asset = pystac.Asset(href=str(path), media_type=pystac.MediaType.COG, roles=["data"], title=f"{key} ({name})")
        EOExtension.ext(asset).bands = [Band.create(name=key, common_name=name)]
        RasterExtension.ext(asset).bands = [
            RasterBand.create(nodata=0, data_type=DataType.UINT16, scale=SCALE, spatial_resolution=RESOLUTION)
        ]
        item.add_asset(key, asset)
    return item


def _swath(scene: Scene, shape: tuple[int, int]) -> np.ndarray:
    """Where the scene has data: all of it, but for a diagonal swath edge in zone 33 in April."""
    rows, cols = np.indices(shape)
    if scene.zone == 33 and scene.when.month == 4:
        return cols + rows * 0.5 < shape[1] * 0.9
    return np.ones(shape, dtype=bool)


def _write_cog(path: Path, values: np.ndarray, epsg: int, transform: rasterio.Affine) -> None:
    profile = {
        "driver": "COG",
        "width": values.shape[1],
        "height": values.shape[0],
        "count": 1,
        "dtype": "uint16",
        "crs": CRS.from_epsg(epsg),
        "transform": transform,
        "nodata": 0,
        "compress": "ZSTD",
        "level": 1,
        "blocksize": 512,
        "overview_resampling": "average",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values, 1)
