"""Which cells of a regular grid intersect a mask: vectorized, coarse to fine.

At scale, building cell geometries costs more than testing them, so cells are
first tested in square blocks: a block inside the mask keeps all its cells
without building any, a block missing the mask drops them, and only cells of
blocks on the mask's boundary are tested one by one: first by their centre (a cell whose centre lies
inside the mask shares area with it), and only the rest built and tested in GEOS, with the prepared mask
as the first argument so that GEOS uses the prepared geometry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

BLOCK = 8


@dataclass(frozen=True)
class CellHits:
    """Grid cells that share area with a mask; ``edge`` marks the cells not proven inside it."""

    col: np.ndarray
    row: np.ndarray
    edge: np.ndarray

    def __len__(self) -> int:
        return len(self.col)


def cells_in(mask: shapely.Geometry, origin: tuple[float, float], size: float, block: int = BLOCK) -> CellHits:
    """Cells ``(col, row)`` of the grid ``origin + k × size`` whose area meets ``mask``.

    A cell's lower-left corner is ``(ox + col × size, oy + row × size)``. Cells
    that only touch the mask along an edge or at a corner are left out.
    """
    empty = CellHits(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, bool))
    if mask.is_empty:
        return empty
    shapely.prepare(mask)
    ox, oy = origin
    xmin, ymin, xmax, ymax = mask.bounds
    # one cell of margin: rounding in the divisions must never drop a cell; the predicates decide
    c0, c1 = int(np.floor((xmin - ox) / size)) - 1, int(np.ceil((xmax - ox) / size)) + 1
    r0, r1 = int(np.floor((ymin - oy) / size)) - 1, int(np.ceil((ymax - oy) / size)) + 1
    bc, br = _lattice(np.arange(c0, c1, block), np.arange(r0, r1, block))
    blocks = shapely.box(
        ox + bc * size, oy + br * size, ox + np.minimum(bc + block, c1) * size, oy + np.minimum(br + block, r1) * size
    )
    inside = shapely.contains_properly(mask, blocks)
    touched = ~inside & shapely.intersects(mask, blocks)
    full_c, full_r = _expand(bc[inside], br[inside], block, c1, r1)
    edge_c, edge_r = _expand(bc[touched], br[touched], block, c1, r1)
    hit = shapely.contains_xy(mask, ox + (edge_c + 0.5) * size, oy + (edge_r + 0.5) * size)
    c, r = edge_c[~hit], edge_r[~hit]
    cells = shapely.box(ox + c * size, oy + r * size, ox + (c + 1) * size, oy + (r + 1) * size)
    meets = shapely.intersects(mask, cells)
    meets[meets] = ~shapely.touches(mask, cells[meets])
    hit[~hit] = meets
    if not hit.any() and not inside.any():
        return empty
    col = np.concatenate([full_c, edge_c[hit]])
    row = np.concatenate([full_r, edge_r[hit]])
    edge = np.concatenate([np.zeros(len(full_c), bool), np.ones(int(hit.sum()), bool)])
    return CellHits(col, row, edge)


def _lattice(cols: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c, r = np.meshgrid(cols, rows)
    return c.ravel().astype(np.int64), r.ravel().astype(np.int64)


def _expand(bc: np.ndarray, br: np.ndarray, block: int, c1: int, r1: int) -> tuple[np.ndarray, np.ndarray]:
    dc, dr = _lattice(np.arange(block), np.arange(block))
    col = (bc[:, None] + dc[None, :]).ravel()
    row = (br[:, None] + dr[None, :]).ravel()
    keep = (col < c1) & (row < r1)
    return col[keep], row[keep]
