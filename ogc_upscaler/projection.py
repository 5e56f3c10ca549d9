"""Moving geometries between coordinate reference systems, vectorized.

Every function here works on arrays of shapely geometries and does its loop in
GEOS or PROJ, never in Python per geometry. Axis order is always x/east first
(``always_xy=True``): EPSG:3035 and EPSG:4326 put northing or latitude first in
their authority definition, and mixing that up is the classic tiling bug.

Geometries in WGS84 keep their longitudes in [-180, 180]; one that crosses the
antimeridian is split into a MultiPolygon there (RFC 7946, section 3.1.9).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import shapely
from pyproj import CRS, Proj, Transformer

WGS84 = 4326
EQUAL_AREA = 6933  # WGS 84 / NSIDC EASE-Grid 2.0 Global: equal-area, valid from 86°S to 86°N

#: Longest edge, in degrees, kept when densifying a WGS84 geometry before projecting it.
DEGREES_STEP = 0.05
#: Longest edge, in metres, kept when densifying a projected geometry before projecting it to WGS84.
METRES_STEP = 2500.0
#: Vertex spacing in degrees along a seam cut before it is projected: it bends by millimetres in between.
CUT_STEP = 0.01


#: ETRS89's geographic CRS. PROJ goes from WGS 84 to ETRS89 by a null transformation (EPSG:1149), so a
#: WGS 84 longitude/latitude is taken as ETRS89's, with the same result to the bit (tested), and without
#: the 90 ms PROJ spends choosing among the operations between them (a tenth of `grid` on the EU27).
ETRS89 = 4258


@lru_cache(maxsize=256)
def transformer(src: int, dst: int) -> Transformer:
    """A cached x/y-ordered transformer between two EPSG codes."""
    if src == WGS84 and _on_etrs89(dst):
        src = ETRS89
    elif dst == WGS84 and _on_etrs89(src):
        dst = ETRS89
    return Transformer.from_crs(CRS.from_epsg(src), CRS.from_epsg(dst), always_xy=True)


@lru_cache(maxsize=256)
def _on_etrs89(epsg: int) -> bool:
    geodetic = CRS.from_epsg(epsg).geodetic_crs
    return epsg != ETRS89 and geodetic is not None and geodetic.to_epsg() == ETRS89


@lru_cache(maxsize=256)
def is_equal_area(epsg: int) -> bool:
    """Whether EPSG ``epsg`` is an equal-area projection (areas measured in it are true areas)."""
    operation = CRS.from_epsg(epsg).coordinate_operation
    return operation is not None and "equal area" in operation.method_name.lower().replace("-", " ")


def project(geoms: np.ndarray | shapely.Geometry, src: int, dst: int) -> np.ndarray:
    """Project geometries from EPSG ``src`` to EPSG ``dst`` vertex by vertex.

    Densify first (:func:`densify_native` or :func:`densify_degrees`) where the
    edges must follow their true curved shape in the target CRS.
    """
    if src == dst:
        return np.asarray(geoms)
    tr = transformer(src, dst)

    def _xy(coords: np.ndarray) -> np.ndarray:
        x, y = tr.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geoms, _xy)


def densify_degrees(geoms: np.ndarray | shapely.Geometry) -> np.ndarray:
    """Densify WGS84 geometries so that no edge is longer than :data:`DEGREES_STEP`."""
    return shapely.segmentize(geoms, DEGREES_STEP)


def densify_native(geoms: np.ndarray, pixel_size: float) -> np.ndarray:
    """Densify projected geometries with a vertex at least every :data:`METRES_STEP`.

    One fixed step for every tile keeps the edges two neighbours share identical,
    and a straight edge of up to 2.5 km bends in WGS84 by centimetres at most.
    The step is a whole number of pixels, so the added points stay on the pixel lattice.
    """
    step = max(pixel_size, np.floor(METRES_STEP / pixel_size) * pixel_size)
    return shapely.segmentize(geoms, step)


def to_wgs84(geoms: np.ndarray, epsg: int, pixel_size: float) -> np.ndarray:
    """Footprints in WGS84 of native geometries, densified and split at the antimeridian."""
    lonlat = project(densify_native(geoms, pixel_size), epsg, WGS84)
    return split_antimeridian(lonlat)


def boxes_to_wgs84(bounds: np.ndarray, epsg: int, pixel_size: float) -> np.ndarray:
    """WGS84 footprints of native boxes ``(xmin, ymin, xmax, ymax)``, as :func:`to_wgs84` of their densified
    polygons gives them, built from coordinate arrays in one pass (no box, no segmentize): the ring of
    ``shapely.box`` (from the lower-right corner, counter-clockwise), each edge in equal steps of at most
    :func:`densify_native`'s. Every vertex is ``min + k × step`` of its own box, and the corners its bounds,
    so two neighbours of one size and row (or column) compute a shared edge's vertices alike."""
    if not len(bounds):
        return np.empty(0, dtype=object)
    width, height = bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1]
    if np.ptp(width) or np.ptp(height):  # boxes of several sizes: their rings differ in length
        return to_wgs84(shapely.box(*bounds.T), epsg, pixel_size)
    step = max(pixel_size, np.floor(METRES_STEP / pixel_size) * pixel_size)
    nx, ny = max(1, int(np.ceil(width[0] / step))), max(1, int(np.ceil(height[0] / step)))
    i, j = np.arange(nx), np.arange(ny)
    ring_i = np.concatenate([np.full(ny, nx), nx - i, np.zeros(ny, int), i, [nx]])
    ring_j = np.concatenate([j, np.full(nx, ny), ny - j, np.zeros(nx, int), [0]])
    x = bounds[:, :1] + ring_i * (width[:1, None] / nx)
    y = bounds[:, 1:2] + ring_j * (height[:1, None] / ny)
    x[:, ring_i == nx] = bounds[:, 2:3]  # the far corners exactly as the bounds give them
    y[:, ring_j == ny] = bounds[:, 3:4]
    lon, lat = transformer(epsg, WGS84).transform(x.ravel(), y.ravel())
    rings = np.stack([np.reshape(lon, x.shape), np.reshape(lat, y.shape)], axis=-1)
    return split_antimeridian(shapely.polygons(rings))


def area_km2(geoms_wgs84: np.ndarray | shapely.Geometry) -> np.ndarray:
    """Area in km² of WGS84 geometries, measured in an equal-area projection."""
    projected = project(densify_degrees(geoms_wgs84), WGS84, EQUAL_AREA)
    return shapely.area(projected) / 1e6


#: Gauss–Legendre points across a box (two, at ±1/√3 of its half-width): exact for cubic variation.
_GAUSS = np.array([-1.0, 1.0]) / np.sqrt(3.0)


@lru_cache(maxsize=256)
def measures_by_scale(epsg: int) -> bool:
    """Whether :func:`box_areas_km2` applies to EPSG ``epsg``: a Transverse Mercator (UTM) on the WGS84 or
    GRS80 ellipsoid, whose areal scale PROJ gives exactly (not so for spherical forms such as EPSG:3857,
    whose scale is that of a sphere, nor on another ellipsoid, whose area is not WGS84's)."""
    crs = CRS.from_epsg(epsg)
    operation = crs.coordinate_operation
    ellipsoid = crs.ellipsoid
    return (
        operation is not None
        and operation.method_name == "Transverse Mercator"
        and ellipsoid is not None
        and abs(ellipsoid.semi_major_metre - 6_378_137.0) < 0.01
        and abs(ellipsoid.inverse_flattening - 298.2572) < 1e-3
    )


def box_areas_km2(bounds: np.ndarray, epsg: int) -> np.ndarray:
    """Area in km² on the ellipsoid of boxes ``[xmin, ymin, xmax, ymax]`` of CRS ``epsg`` (one that
    :func:`measures_by_scale`).

    Each box's area in the CRS is divided by the CRS's areal scale (from PROJ's factors), averaged
    over two Gauss points across the box (a Transverse Mercator's scale changes with the distance
    from its central meridian, hardly along it): no geometry is densified or projected. For UTM
    boxes of 10 to 100 km it agrees with pyproj's geodesic area of their footprints to about 1e-7,
    as closely as a 2 × 2 rule does at twice the cost.
    """
    if not len(bounds):
        return np.empty(0)
    half = (bounds[:, 2:] - bounds[:, :2]) / 2.0
    centre = bounds[:, :2] + half
    x = (centre[:, 0, None] + half[:, 0, None] * _GAUSS[None, :]).ravel()
    y = np.repeat(centre[:, 1], 2)
    lon, lat = transformer(epsg, WGS84).transform(x, y)
    scale = np.asarray(_proj(epsg).get_factors(lon, lat).areal_scale).reshape(-1, 2)
    return 4.0 * half[:, 0] * half[:, 1] * np.mean(1.0 / scale, axis=1) / 1e6


@lru_cache(maxsize=256)
def _proj(epsg: int) -> Proj:
    return Proj(CRS.from_epsg(epsg))


def lonlat_box(west: float, south: float, east: float, north: float) -> shapely.Geometry:
    """A longitude/latitude box; ``west > east`` crosses the antimeridian: two boxes, one each side.

    >>> lonlat_box(170, -10, -170, 10).geom_type
    'MultiPolygon'
    """
    if west <= east:
        return shapely.box(west, south, east, north)
    return shapely.multipolygons([shapely.box(west, south, 180.0, north), shapely.box(-180.0, south, east, north)])


def split_antimeridian(geoms: np.ndarray) -> np.ndarray:
    """Split WGS84 polygons whose edges jump across the antimeridian.

    A geometry crosses when two consecutive longitudes of a ring differ by more
    than 180°. Only those are rebuilt; the others are returned unchanged.
    """
    geoms = np.asarray(geoms, dtype=object).copy()
    bounds = shapely.bounds(geoms)
    suspects = np.flatnonzero(bounds[:, 2] - bounds[:, 0] > 180.0)
    for i in suspects:
        geoms[i] = split_antimeridian_one(geoms[i])
    return geoms


def split_antimeridian_one(geom: shapely.Geometry) -> shapely.Geometry:
    """Split one WGS84 polygon or multipolygon at the antimeridian, where it crosses."""
    parts = [_split_polygon(p) for p in shapely.get_parts(geom)]
    pieces = [q for part in parts for q in shapely.get_parts(part) if not q.is_empty]
    return shapely.multipolygons(pieces) if len(pieces) > 1 else pieces[0]


#: A jump of longitude between two vertices read as crossing the antimeridian, as RFC 7946 and the
#: ``antimeridian`` package read it, is unambiguous when the crossing way is short: at most this many degrees.
CLEAR_CROSSING = 90.0


def ambiguous_crossings(geom: shapely.Geometry) -> list[str]:
    """The edges of WGS84 polygons that are read as crossing the antimeridian (their longitudes jump by more
    than 180°) although drawn as they are they could as well be a wide edge: the crossing way spans more than
    :data:`CLEAR_CROSSING` degrees, or the ring winds clockwise read as crossing and counter-clockwise as
    drawn (RFC 7946's right-hand rule then says: as drawn). One description per such ring."""
    found = []
    for p, polygon in enumerate(shapely.get_parts(geom)):
        for r, ring in enumerate([polygon.exterior, *polygon.interiors]):
            coords = np.asarray(ring.coords)[:, :2]
            lon = coords[:, 0]
            jumps = np.diff(lon)
            edges = np.flatnonzero(
                (np.abs(jumps) > 180.0) & ~((np.abs(lon[:-1]) == 180.0) & (np.abs(lon[1:]) == 180.0))
            )
            if not len(edges):
                continue
            wide = [e for e in edges if 360.0 - abs(jumps[e]) > CLEAR_CROSSING]
            drawn, crossing = _signed_area(coords[:, 0], coords[:, 1]), _signed_area(_unwrap(lon), coords[:, 1])
            winding = r == 0 and drawn > 0 > crossing
            if wide or winding:
                e = (wide or list(edges))[0]
                (x0, y0), (x1, y1) = coords[e], coords[e + 1]
                why = (
                    "its ring winds counter-clockwise as drawn"
                    if winding
                    else f"the crossing way spans {360 - abs(jumps[e]):.0f}°"
                )
                found.append(
                    f"polygon {p}, ring {r}: the edge from ({x0:g}, {y0:g}) to ({x1:g}, {y1:g}) spans "
                    f"{abs(jumps[e]):.0f}° of longitude and is read as crossing the antimeridian, but {why}"
                )
    return found


def _signed_area(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]) / 2.0)


def stac_bbox(geom: shapely.Geometry | np.ndarray) -> list[float]:
    """The bbox of WGS84 geometries as STAC (and RFC 7946, 5.2) writes it: the shortest span of longitudes
    that holds them all, which across the antimeridian has ``west > east`` (Fiji: ``[177, -19, -179, -16]``)."""
    parts = shapely.get_parts(np.atleast_1d(np.asarray(geom, dtype=object)))
    bounds = shapely.bounds(parts[~shapely.is_empty(parts)])
    south, north = float(bounds[:, 1].min()), float(bounds[:, 3].max())
    spans = bounds[np.argsort(bounds[:, 0])][:, [0, 2]]
    merged = [list(spans[0])]
    for start, end in spans[1:]:
        if start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    # the widest gap between the merged spans, the one around the back of the globe (east end to west start) too
    gaps = [(merged[i + 1][0] - merged[i][1], i) for i in range(len(merged) - 1)]
    around = merged[0][0] + 360.0 - merged[-1][1]
    if not gaps or max(gaps)[0] <= around:
        return [float(merged[0][0]), south, float(merged[-1][1]), north]
    _, i = max(gaps)
    return [float(merged[i + 1][0]), south, float(merged[i][1]), north]


def crosses_pole(geom: shapely.Geometry) -> bool:
    """Whether a WGS84 polygon's ring winds around a pole (its unwrapped ring does not close)."""
    for poly in shapely.get_parts(geom):
        lon = _unwrap(np.asarray(poly.exterior.coords)[:, 0])
        if abs(lon[-1] - lon[0]) > 180.0:
            return True
    return False


def _split_polygon(poly: shapely.Polygon) -> shapely.Geometry:
    rings = [poly.exterior, *poly.interiors]
    lons = [np.asarray(r.coords)[:, 0] for r in rings]
    if all(np.array_equal(_unwrap(lon), lon) for lon in lons):
        return poly
    unwrapped = shapely.Polygon(_unwrap_ring(poly.exterior), [_unwrap_ring(r) for r in poly.interiors])
    pieces = []
    for k in (-1, 0, 1):
        window = shapely.box(-180.0 + 360.0 * k, -90.0, 180.0 + 360.0 * k, 90.0)
        piece = shapely.intersection(shapely.make_valid(unwrapped), window)
        if not piece.is_empty:
            pieces.extend(shapely.get_parts(_shift_lon(piece, -360.0 * k)))
    polys = [p for p in pieces if isinstance(p, shapely.Polygon) and p.area > 0]
    return shapely.multipolygons(polys) if len(polys) > 1 else polys[0]


def _shift_lon(geom: shapely.Geometry, dx: float) -> shapely.Geometry:
    return shapely.transform(geom, lambda c: c + np.array([dx, 0.0]))


def _unwrap(lon: np.ndarray) -> np.ndarray:
    jumps = np.diff(lon)
    # an edge from +180 to -180 along a parallel is a planar edge of a band, not a crossing
    jumps = np.where((np.abs(lon[:-1]) == 180.0) & (np.abs(lon[1:]) == 180.0), 0.0, jumps)
    shift = np.concatenate([[0.0], np.cumsum(np.where(jumps > 180.0, -360.0, np.where(jumps < -180.0, 360.0, 0.0)))])
    return lon + shift


def _unwrap_ring(ring: shapely.LinearRing) -> np.ndarray:
    coords = np.asarray(ring.coords)[:, :2].copy()
    coords[:, 0] = _unwrap(coords[:, 0])
    return coords
