"""Synthetic AOIs for the benchmarks: a continent with a long coastline, and a land-like globe."""

from __future__ import annotations

import numpy as np
import shapely

from ogc_upscaler.aoi import AOI
from ogc_upscaler.projection import area_km2


def noisy_blob(lon: float, lat: float, rx: float, ry: float, vertices: int, seed: int) -> shapely.Polygon:
    """A star-shaped polygon with a fractal-looking edge of ``vertices`` vertices."""
    rng = np.random.default_rng(seed)
    theta = np.linspace(0.0, 2.0 * np.pi, vertices, endpoint=False)
    radius = np.ones(vertices)
    for k in range(2, 200):
        radius += rng.normal(0.0, 0.35 / k) * np.sin(k * theta + rng.uniform(0, 2 * np.pi))
    radius = np.clip(radius, 0.3, None)
    x = lon + rx * radius * np.cos(theta)
    y = np.clip(lat + ry * radius * np.sin(theta), -79.9, 83.9)
    return shapely.make_valid(shapely.Polygon(np.column_stack([x, y])))


def continent(vertices: int = 12_000) -> AOI:
    """A Europe-sized AOI with ``vertices`` vertices, in WGS84."""
    return AOI(noisy_blob(15.0, 52.0, 22.0, 13.0, vertices, seed=1), f"synthetic continent ({vertices} vertices)")


_LAND = [
    (-100, 48, 32, 20),
    (-60, -15, 16, 28),
    (20, 5, 22, 30),
    (85, 50, 70, 22),
    (135, -25, 18, 11),
    (-40, 73, 14, 8),
]


def land(target_km2: float = 135e6, vertices: int = 750) -> AOI:
    """Six continent-like blobs (no Antarctica) scaled to about ``target_km2`` of land."""
    scale = 1.0
    for _ in range(4):
        blobs = [
            noisy_blob(lo, la, rx * scale, ry * scale, vertices, seed=i) for i, (lo, la, rx, ry) in enumerate(_LAND)
        ]
        geom = shapely.union_all(blobs)
        geom = shapely.intersection(geom, shapely.box(-180, -79.9, 180, 83.9))
        area = float(area_km2(np.asarray([geom]))[0])
        scale *= (target_km2 / area) ** 0.5
    return AOI(geom, "synthetic land mask")
