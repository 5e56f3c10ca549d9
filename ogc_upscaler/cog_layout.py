"""Whether a GeoTIFF is laid out as a Cloud-Optimized GeoTIFF, judged on a dataset already open.

The checks are those of rio-cogeo's ``cog_validate`` (7.x), which gives the errors (its warnings never
made a file invalid here): a GeoTIFF, with no external ``.ovr``, tiled when over 512 px, its main IFD
within the first 300 bytes, no ghost header saying the layout was broken by later edits, overviews
sorted with each IFD after the previous one, the smallest overview's first block after its IFD, and the
first blocks from the smallest overview to the main image in decreasing order.

``cog_validate`` opens the file itself, then once more per overview; :func:`layout_errors` reads the
same TIFF tags from the dataset the collector opened anyway, and opens an overview on its own only
to see whether one over 512 px is tiled, which only rasters over 1024 px can have.
"""

from __future__ import annotations

import math
from pathlib import Path

import rasterio
from rasterio.io import DatasetReader

#: Above this width or height, a raster or an overview must be tiled (and should have overviews).
UNTILED_MAX = 512
#: The main IFD must start within this many bytes (GDAL's ghost header comes first).
MAIN_IFD_MAX = 300


def layout_errors(src: DatasetReader) -> list[str]:
    """What keeps ``src`` from being a COG, in ``cog_validate``'s words; empty for a COG."""
    if src.driver != "GTiff":
        return ["The file is not a GeoTIFF"]
    errors = []
    if any(Path(name).suffix.lower() == ".ovr" for name in src.files):
        errors.append("Overviews found in external .ovr file. They should be internal")
    overviews = src.overviews(1)
    if (src.width > UNTILED_MAX or src.height > UNTILED_MAX) and src.block_shapes[0][1] == src.width:
        errors.append("The file is greater than 512xH or 512xW, but is not tiled")
    ifds = [int(src.get_tag_item("IFD_OFFSET", "TIFF", bidx=1))]
    if ifds[0] > MAIN_IFD_MAX:
        errors.append(f"The offset of the main IFD should be < 300. It is {ifds[0]} instead")
    ghost = src.get_tag_item("GDAL_STRUCTURAL_METADATA", "TIFF")
    if ghost is not None and "KNOWN_INCOMPATIBLE_EDITION=YES" in ghost:
        errors.append("This file used to have optimizations in its layout, but those have been invalidated")
    if overviews != sorted(overviews):
        errors.append("Overviews should be sorted")
    for ix, factor in enumerate(overviews):
        if factor <= 1:
            errors.append(f"Invalid Decimation {factor} for overview level {ix}")
        ifds.append(int(src.get_tag_item("IFD_OFFSET", "TIFF", bidx=1, ovr=ix)))
        if ifds[-1] < ifds[-2]:
            errors.append(f"The IFD of overview {ix} is at byte {ifds[-1]}, before the one of the level above it")
    errors += _block_order_errors(src, overviews, ifds[-1])
    errors += _untiled_overviews(src, overviews)
    return errors


def _block_order_errors(src: DatasetReader, overviews: list[int], last_ifd: int) -> list[str]:
    """The first blocks' offsets must run from the smallest overview to the main image, after the IFDs."""
    rows, cols = src.block_shapes[0]
    firsts = [_first_block(src, src.height, src.width, rows, cols, None)]
    for ix, factor in enumerate(overviews):
        firsts.append(_first_block(src, src.height // factor, src.width // factor, rows, cols, ix))
    found = [offset for offset in firsts if offset is not None]
    errors = []
    if found and found[-1] < last_ifd:
        place = "smallest overview" if overviews else "image"
        errors.append(f"The offset of the first block of the {place} should be after its IFD")
    for i in range(len(found) - 2, 0, -1):
        if found[i] < found[i + 1]:
            errors.append(f"The first block of overview {i - 1} should be after the one of overview {i}")
    if len(found) >= 2 and found[0] < found[1]:
        errors.append(f"The first block of the main image should be after the one of overview {len(overviews) - 1}")
    return errors


def _first_block(src: DatasetReader, height: int, width: int, rows: int, cols: int, ovr: int | None) -> int | None:
    """The offset of the first block (row by row) that has data, or None if none has."""
    for y in range((height + rows - 1) // rows):
        for x in range((width + cols - 1) // cols):
            offset = src.get_tag_item(f"BLOCK_OFFSET_{x}_{y}", "TIFF", bidx=1, ovr=ovr)
            if offset is not None and int(offset) > 0:
                return int(offset)
    return None


def _untiled_overviews(src: DatasetReader, overviews: list[int]) -> list[str]:
    """Overviews over 512 px that are not tiled; only those that may be that large are opened."""
    errors = []
    for ix, factor in enumerate(overviews):
        if math.ceil(src.width / factor) <= UNTILED_MAX and math.ceil(src.height / factor) <= UNTILED_MAX:
            continue
        with rasterio.open(src.name, OVERVIEW_LEVEL=ix) as level:
            big = level.width > UNTILED_MAX or level.height > UNTILED_MAX
            if big and level.block_shapes[0][1] == level.width:
                errors.append(f"Overview of index {ix} is not tiled")
    return errors
