"""Grids by name: the named grids, custom ``EPSG:code:size`` grids and grid files."""

from __future__ import annotations

from pathlib import Path

from ogc_upscaler.errors import InvalidGrid
from ogc_upscaler.grid.base import Grid
from ogc_upscaler.grid.file import FileGrid
from ogc_upscaler.grid.mgrs import MGRSGrid
from ogc_upscaler.grid.projected import ProjectedGrid
from ogc_upscaler.grid.syntax import CUSTOM, GRID_HELP, NAMED_GRIDS
from ogc_upscaler.grid.utm import UTMGrid

__all__ = ["GRID_HELP", "NAMED_GRIDS", "custom_grid", "grid_from_spec"]

DEFAULT_RESOLUTION = 10.0

_CUSTOM = CUSTOM


def grid_from_spec(
    spec: str, *, resolution: float | None = None, buffer_px: int = 0, base_dir: Path | None = None
) -> Grid:
    """The grid that ``spec`` names: see :data:`GRID_HELP`."""
    pixel = DEFAULT_RESOLUTION if resolution is None else float(resolution)
    if spec in NAMED_GRIDS:
        kind, size = NAMED_GRIDS[spec]
        code = spec.replace("-", "").upper()
        if kind == "laea":
            return ProjectedGrid(spec, code, 3035, size, pixel, (0.0, 0.0), buffer_px)
        if kind == "mgrs":
            return MGRSGrid(pixel_size=pixel, buffer_px=buffer_px)
        return UTMGrid(spec, code, size, pixel, buffer_px)
    custom = _CUSTOM.fullmatch(spec)
    if custom:
        epsg, size = int(custom[1]), float(custom[2])
        origin = (float(custom[3] or 0), float(custom[4] or 0))
        return custom_grid(epsg, size, pixel, origin, buffer_px)
    path = Path(spec)
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    if path.suffix.lower() in {".geojson", ".json"} or path.exists():
        return FileGrid(path, pixel, buffer_px)
    raise InvalidGrid(f"unknown grid {spec!r}", hint=f"give {GRID_HELP}")


def is_grid_name(spec: str) -> bool:
    """Whether ``spec`` names a grid without a file: a named grid or ``EPSG:CODE:TILE_SIZE[...]``."""
    return spec in NAMED_GRIDS or _CUSTOM.fullmatch(spec) is not None


def custom_grid(
    epsg: int,
    tile_size: float,
    pixel_size: float = DEFAULT_RESOLUTION,
    origin: tuple[float, float] = (0.0, 0.0),
    buffer_px: int = 0,
) -> ProjectedGrid:
    """A grid of square ``tile_size`` metre tiles from ``origin`` in projected EPSG ``epsg``."""
    if tile_size <= 0:
        raise InvalidGrid(f"custom grid EPSG:{epsg}: tile size must be positive, got {tile_size:g}")
    name = f"EPSG:{epsg}:{tile_size:g}" + (f":{origin[0]:g},{origin[1]:g}" if any(origin) else "")
    code = f"EPSG{epsg}T{tile_size:g}".replace(".", "P")
    return ProjectedGrid(name, code, epsg, tile_size, pixel_size, origin, buffer_px)
