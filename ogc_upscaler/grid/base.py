"""The grid abstraction every tiling implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ogc_upscaler.errors import InvalidGrid

if TYPE_CHECKING:
    from ogc_upscaler.aoi import AOI
    from ogc_upscaler.grid.tiles import Tile, TileSet

#: Relative tolerance when checking that sizes are whole multiples of the pixel size.
EXACT = 1e-9


class Grid(ABC):
    """A fixed tiling defined before any AOI: tiles are named after their position on it.

    Subclasses are frozen dataclasses with ``name``, ``code``, ``pixel_size`` and
    ``buffer_px`` fields.
    """

    name: str
    code: str
    pixel_size: float
    buffer_px: int

    @abstractmethod
    def tiles(self, aoi: AOI) -> TileSet:
        """The tiles whose area meets the AOI."""

    def chunks(self, aoi: AOI) -> Iterator[TileSet]:
        """The same tiles as :meth:`tiles`, in the same order, a part at a time (a UTM zone, at most
        :data:`~ogc_upscaler.grid.tiles.PART_TILES`), so that a whole globe is written without holding it."""
        from ogc_upscaler.grid.tiles import split

        yield from split(self.tiles(aoi))

    def feature_attributes(self) -> Sequence[Mapping[str, Any]]:
        """The attributes the grid gives its tiles, a mapping per feature (a grid file's); none by default."""
        return ()

    @abstractmethod
    def tile_ids(self, epsg: np.ndarray, col: np.ndarray, row: np.ndarray) -> np.ndarray:
        """Ids of the tiles at these positions."""

    @abstractmethod
    def tile(self, tile_id: str) -> Tile:
        """The tile with this id; :class:`InvalidGrid` if the id does not belong to this grid."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Everything that defines the grid, as plain JSON values (a changed value means other tiles)."""


def check_pixel_size(tile_size: float, pixel_size: float, where: str) -> None:
    """Reject a pixel size that does not divide the tile size into a whole number of pixels."""
    if pixel_size <= 0:
        raise InvalidGrid(f"{where}: resolution must be positive, got {pixel_size:g}")
    ratio = tile_size / pixel_size
    if abs(ratio - round(ratio)) > EXACT * ratio:
        raise InvalidGrid(
            f"{where}: tile size {tile_size:g} m is not a whole number of {pixel_size:g} m pixels",
            hint="choose a resolution that divides the tile size (e.g. 10, 20 or 60 m)",
        )


def check_buffer(buffer_px: int, where: str) -> None:
    """Reject a negative buffer; buffers are whole pixels by type."""
    if buffer_px < 0:
        raise InvalidGrid(f"{where}: buffer must be a whole number of pixels >= 0, got {buffer_px}")


def corner_code(values: np.ndarray, unit: float, positive: str, negative: str, decimals: int = 0) -> list[str]:
    """``E4320``-style codes of corner coordinates in ``unit`` metres (``W120`` below zero), with
    ``decimals`` places where corners are not whole units (``E495000.5``), so that every id maps back."""
    if not decimals:
        scaled = np.rint(values / unit).astype(np.int64)
        return [f"{positive}{v}" if v >= 0 else f"{negative}{-v}" for v in scaled.tolist()]
    scaled = np.round(values / unit, decimals)
    texts = [f"{abs(v):.{decimals}f}".rstrip("0").rstrip(".") for v in scaled.tolist()]
    return [f"{positive if v >= 0 else negative}{t}" for v, t in zip(scaled.tolist(), texts, strict=True)]


def parse_corner(text: str, positive: str, negative: str) -> float:
    """The signed value of an ``E4320``/``W120``/``E495000.5`` code."""
    sign = {positive: 1, negative: -1}[text[0]]
    return sign * float(text[1:])


def decimals_of(*values: float, most: int = 6) -> int:
    """The fewest decimal places that write each of ``values`` exactly (up to ``most``)."""
    for places in range(most + 1):
        if all(abs(round(v, places) - v) < 1e-9 for v in values):
            return places
    return most
