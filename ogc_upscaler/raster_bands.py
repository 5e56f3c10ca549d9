"""The ``raster:bands`` of a collected COG: data type, nodata, resolution and statistics of each band.

Statistics are those of the band's valid pixels, valid as GDAL's mask says (nodata, an internal mask
or alpha): numpy's minimum, maximum, mean and (population) standard deviation, and the valid share.
Each band is read once. Where the mask is the nodata value (the common case), it is worked out from the
pixels read, with GDAL's rule (:func:`nodata_pixels`): GDAL's own mask band would go over them again,
one pixel at a time, which took longer than decoding them.

A package that wrote ``raster:bands`` statistics of its own has them published instead of every pixel
being read again, when they hold up to a look at the header: one entry per band, naming the file's data
type and nodata where they name any, all five figures finite and consistent (minimum <= mean <= maximum,
a standard deviation no larger than half the range, a valid share above 0 and at most 100), an integer
band's extremes whole numbers within its type, and neither extreme the nodata value (the classic slip of
statistics taken over nodata pixels too). Where any of it fails, the statistics are computed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pystac.extensions.raster import DataType
from rasterio.enums import MaskFlags
from rasterio.io import DatasetReader

from ogc_upscaler.errors import UpscalerError

#: The figures a package's statistics must give to be taken as they are.
FIGURES = ("minimum", "maximum", "mean", "stddev", "valid_percent")
#: Slack for a standard deviation that a package rounded up to just over half the range.
SLACK = 1e-6
DATA_TYPES = frozenset(t.value for t in DataType)


class UndescribableBand(UpscalerError):
    """A band whose data type STAC's ``raster:bands`` has no name for (complex64, for one)."""


def check_data_types(src: DatasetReader) -> None:
    """Raise :class:`UndescribableBand` if a band of ``src`` has a type ``raster:bands`` cannot name."""
    for index, dtype in enumerate(src.dtypes, start=1):
        if dtype not in DATA_TYPES:
            raise UndescribableBand(
                f"band {index} is {dtype}, a data type STAC's raster:bands cannot describe",
                hint=f"write the COG with one of {', '.join(sorted(DATA_TYPES - {'other'}))}",
            )


def raster_bands(src: DatasetReader, declared: Sequence[Mapping[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The ``raster:bands`` of ``src``, with the package's ``declared`` statistics where they hold up."""
    statistics = _declared_statistics(src, declared) if declared is not None else None
    if statistics is None:
        statistics = [pixel_statistics(src, index) for index in src.indexes]
    return [_band(src, index, figures) for index, figures in zip(src.indexes, statistics, strict=True)]


def pixel_statistics(src: DatasetReader, index: int) -> dict[str, float]:
    """Statistics of band ``index``'s valid pixels, read once, in the order pystac's ``Statistics`` writes them."""
    values = src.read(index)
    invalid = _invalid(src, index, values)
    valid = values.ravel() if invalid is None or not invalid.any() else values[~invalid]
    figures = {}
    if valid.size:
        figures = {
            "minimum": float(valid.min()),
            "maximum": float(valid.max()),
            "mean": float(valid.mean()),
            "stddev": float(valid.std()),
        }
    figures["valid_percent"] = round(100.0 * valid.size / max(1, values.size), 3)
    return figures


def _band(src: DatasetReader, index: int, statistics: dict[str, float]) -> dict[str, Any]:
    """One entry of ``raster:bands``, keyed in the order pystac's ``RasterBand`` writes them."""
    band: dict[str, Any] = {}
    nodata = src.nodatavals[index - 1]
    if nodata is not None and not math.isnan(nodata):
        band["nodata"] = nodata
    band["data_type"] = src.dtypes[index - 1]
    band["spatial_resolution"] = float(src.res[0])
    band["statistics"] = statistics
    return band


def nodata_pixels(values: np.ndarray, nodata: float) -> np.ndarray:
    """Where ``values`` are ``nodata`` by the rule of GDAL's nodata mask band (``GDALNoDataMaskBand``).

    Integers: equal to ``nodata`` cut to an integer. Floats: NaN where ``nodata`` is NaN, else equal or
    within GDAL's ``ARE_REAL_EQUAL`` (``|v - nodata| < FLT_EPSILON * |v + nodata| * 2``, in the band's
    type), which only values next to ``nodata`` can meet: those are found first, with two comparisons.
    """
    if values.dtype.kind in "iu":
        return values == int(nodata)
    if math.isnan(nodata):
        return np.isnan(values)
    target = values.dtype.type(nodata)
    if math.isinf(nodata) or nodata == 0:
        return values == target
    reach = 8 * float(np.finfo(np.float32).eps) * abs(float(target))  # wider than ARE_REAL_EQUAL can reach
    near = (values >= float(target) - reach) & (values <= float(target) + reach)
    if near.any():
        v = values[near]
        eps, two = values.dtype.type(np.finfo(np.float32).eps), values.dtype.type(2)
        near[near] = (v == target) | (np.abs(v - target) < eps * np.abs(v + target) * two)
    return near


def _invalid(src: DatasetReader, index: int, values: np.ndarray) -> np.ndarray | None:
    """Where band ``index`` (read as ``values``) is not valid by GDAL's mask; None where all of it is."""
    flags = src.mask_flag_enums[index - 1]
    if flags == [MaskFlags.all_valid]:
        return None
    if flags == [MaskFlags.nodata] and values.dtype.kind in "iuf" and values.dtype != np.float16:
        return nodata_pixels(values, src.nodatavals[index - 1])
    return src.read_masks(index) == 0


def _declared_statistics(src: DatasetReader, declared: Sequence[Mapping[str, Any]]) -> list[dict[str, float]] | None:
    """The package's statistics, one per band, if they agree with ``src``'s header; None if any does not."""
    if len(declared) != src.count:
        return None
    found = []
    for index, band in zip(src.indexes, declared, strict=True):
        figures = _figures(band, src, index)
        if figures is None:
            return None
        found.append(figures)
    return found


def _figures(band: Any, src: DatasetReader, index: int) -> dict[str, float] | None:
    """The five figures of a declared band, if it names the file's type and nodata and they are consistent."""
    dtype, nodata = src.dtypes[index - 1], src.nodatavals[index - 1]
    if not isinstance(band, Mapping) or not isinstance(band.get("statistics"), Mapping):
        return None
    if band.get("data_type", dtype) != dtype or ("nodata" in band and not _same_nodata(band["nodata"], nodata)):
        return None
    given = band["statistics"]
    if not all(type(given.get(name)) in (int, float) and math.isfinite(given[name]) for name in FIGURES):
        return None
    figures = {name: float(given[name]) for name in FIGURES}
    low, high = figures["minimum"], figures["maximum"]
    if not (low <= figures["mean"] <= high and 0.0 <= figures["stddev"] <= (high - low) / 2 * (1 + SLACK)):
        return None
    if not 0.0 < figures["valid_percent"] <= 100.0 or nodata in (low, high):
        return None
    if dtype.startswith(("int", "uint")):
        info = np.iinfo(dtype)
        if not (low.is_integer() and high.is_integer() and info.min <= low and high <= info.max):
            return None
    return figures


def _same_nodata(given: Any, nodata: float | None) -> bool:
    """Whether a declared nodata (a number, or "nan", "inf", "-inf") is the file's."""
    if nodata is None:
        return False
    try:
        value = float(given)
    except (TypeError, ValueError):
        return False
    return (math.isnan(value) and math.isnan(nodata)) or value == nodata
