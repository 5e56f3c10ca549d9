"""Pixel-aligned grids: fixed tilings whose tiles are named after their position.

>>> from ogc_upscaler.aoi import load_aoi
>>> grid = grid_from_spec("laea-20km")
>>> tiles = grid.tiles(load_aoi("11.5,47.5,12.5,48.0"))
>>> len(tiles), tiles[0].id
(20, 'LAEA20KM-E4420N2760')
"""

from typing import TYPE_CHECKING

from ogc_upscaler.lazy import attach

if TYPE_CHECKING:
    from ogc_upscaler.grid.base import Grid
    from ogc_upscaler.grid.file import FileGrid
    from ogc_upscaler.grid.named import GRID_HELP, NAMED_GRIDS, custom_grid, grid_from_spec
    from ogc_upscaler.grid.projected import ProjectedGrid
    from ogc_upscaler.grid.tiles import Tile, TileSet
    from ogc_upscaler.grid.utm import UTMGrid

#: Where each name lives, imported on first use: ``ogc_upscaler.grid.syntax`` (the command line's help)
#: must not import numpy, shapely and pyproj with the grids.
_HOMES = {
    "FileGrid": "ogc_upscaler.grid.file",
    "GRID_HELP": "ogc_upscaler.grid.syntax",
    "Grid": "ogc_upscaler.grid.base",
    "NAMED_GRIDS": "ogc_upscaler.grid.syntax",
    "ProjectedGrid": "ogc_upscaler.grid.projected",
    "Tile": "ogc_upscaler.grid.tiles",
    "TileSet": "ogc_upscaler.grid.tiles",
    "UTMGrid": "ogc_upscaler.grid.utm",
    "custom_grid": "ogc_upscaler.grid.named",
    "grid_from_spec": "ogc_upscaler.grid.named",
}

__all__ = [
    "GRID_HELP",
    "NAMED_GRIDS",
    "FileGrid",
    "Grid",
    "ProjectedGrid",
    "Tile",
    "TileSet",
    "UTMGrid",
    "custom_grid",
    "grid_from_spec",
]


attach(__name__, _HOMES)
