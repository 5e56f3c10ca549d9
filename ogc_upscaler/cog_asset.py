"""A package's COG placed in the catalog in one pass: read once, checked, masked where it must be, described.

The file is read once, for its checksum, and opened once by rasterio for everything else: its layout
(:mod:`ogc_upscaler.cog_layout`), its header (CRS, bounds, shape, transform), whether its window runs
past its tile's footprint (:mod:`ogc_upscaler.footprint_mask`) and the pixels its statistics need, if
the package gave none that hold up (:mod:`ogc_upscaler.raster_bands`). A COG kept as it is gets into the
catalog as a hard link where the filesystem allows (a copy where it does not), as
:mod:`ogc_upscaler.assets` places staged files: the catalog costs no second copy of the campaign's
rasters, and no time to write one.

Two cases cost more, and are rare: a file that is not a COG is rewritten as one first (rio-cogeo's
``cog_translate``), and one whose window runs past its footprint is masked and rewritten, then opened
once more for the statistics and checksum of what was written.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely
from rasterio.io import DatasetReader
from rio_cogeo.cogeo import cog_translate
from rio_cogeo.profiles import cog_profiles

from ogc_upscaler.assets import link_or_copy
from ogc_upscaler.cog_layout import layout_errors
from ogc_upscaler.errors import UpscalerError
from ogc_upscaler.footprint_mask import nodata_for, outside_pixels
from ogc_upscaler.raster_bands import check_data_types, raster_bands

#: The profile a file that is not a COG, or a masked one, is written with.
PROFILE = "deflate"


class NotConvertible(UpscalerError):
    """A raster that is still no COG once rewritten as one."""


@dataclass(frozen=True)
class CogAsset:
    """A COG as its item describes it: ``proj:*`` from its header, ``raster:bands``, ``file:*``."""

    crs: str | None
    bounds: tuple[float, float, float, float]
    shape: tuple[int, int]
    transform: tuple[float, float, float, float, float, float]
    bands: list[dict[str, Any]]
    size: int
    checksum: str  # multihash: sha2-256 (0x12), 32 bytes (0x20), then the digest

    @classmethod
    def of(cls, src: DatasetReader, content: bytes, bands: list[dict[str, Any]]) -> CogAsset:
        """The description of ``src``, whose file holds ``content``."""
        a, b, c, d, e, f = list(src.transform)[:6]
        left, bottom, right, top = src.bounds
        return cls(
            crs=src.crs.to_string() if src.crs else None,
            bounds=(left, bottom, right, top),
            shape=(src.height, src.width),
            transform=(a, b, c, d, e, f),
            bands=bands,
            size=len(content),
            checksum="1220" + hashlib.sha256(content).hexdigest(),
        )


def place_cog(
    source: Path,
    target: Path,
    footprint: shapely.Geometry | None = None,
    declared: Sequence[Mapping[str, Any]] | None = None,
) -> CogAsset:
    """Place the package's raster ``source`` at ``target`` as a COG and describe it.

    ``footprint`` (WGS84) is the tile's: pixels outside it become nodata. ``declared`` is the
    ``raster:bands`` the package wrote, whose statistics are taken where they hold up. Raises
    FileNotFoundError, rasterio's errors for a file that is no raster, and :class:`UpscalerError`\\ s
    for one that cannot be described.
    """
    tmp = target.with_name(target.name + ".tmp")
    tmp.unlink(missing_ok=True)  # a try cut short left it
    try:
        with local_files():
            asset = _place(source, tmp, footprint, declared) or _place_converted(source, tmp, footprint)
        os.replace(tmp, target)
    finally:  # gone once it replaced the target, unless both were links to one file (collected again)
        tmp.unlink(missing_ok=True)
    return asset


def local_files() -> rasterio.Env:
    """GDAL's environment for local files: no cloud session. Outside one, with AWS keys in the environment
    (as for a campaign reading or writing S3), rasterio builds a boto3 session for every open: 17 ms of CPU
    each, against 1.1 ms for the open itself (bench/bench_deliver.py)."""
    from rasterio.session import DummySession

    return rasterio.Env(session=DummySession())


def _place_converted(source: Path, tmp: Path, footprint: shapely.Geometry | None) -> CogAsset:
    """Rewrite ``source``, which is no COG, as one, and place that (the package's statistics are not its)."""
    converted = tmp.with_name(tmp.name + ".cog")
    try:
        cog_translate(str(source), str(converted), cog_profiles.get(PROFILE), quiet=True, in_memory=False)
        asset = _place(converted, tmp, footprint, None)
    finally:
        converted.unlink(missing_ok=True)
    if asset is None:
        raise NotConvertible(
            f"{source} is not a COG, and is still none once rewritten as one",
            hint="write the package's output as a COG (GDAL's COG driver)",
        )
    return asset


def _place(
    source: Path, tmp: Path, footprint: shapely.Geometry | None, declared: Sequence[Mapping[str, Any]] | None
) -> CogAsset | None:
    """Write the COG ``source`` (masked where it must be) to ``tmp``; None, writing nothing, if it is no COG."""
    content = source.read_bytes()
    with rasterio.open(source) as src:
        check_data_types(src)
        if layout_errors(src):
            return None
        outside = outside_pixels(src, footprint) if footprint is not None else None
        if outside is None:
            asset = CogAsset.of(src, content, raster_bands(src, declared))
            link_or_copy(source, tmp)
            return asset
        _write_masked(src, outside, tmp)
    with rasterio.open(tmp) as src:
        return CogAsset.of(src, tmp.read_bytes(), raster_bands(src))


def _write_masked(src: DatasetReader, outside: np.ndarray, target: Path) -> None:
    """Write ``src`` to ``target`` as a COG with its ``outside`` pixels nodata."""
    profile, data = src.profile, src.read()
    nodata = src.nodata if src.nodata is not None else nodata_for(data.dtype)
    data[:, outside] = nodata
    plain = target.with_name(target.name + ".masked.tif")
    profile.update(driver="GTiff", nodata=nodata)
    for key in ("blockxsize", "blockysize", "tiled", "interleave"):
        profile.pop(key, None)
    try:
        with rasterio.open(plain, "w", **profile) as out:
            out.write(data)
        cog_translate(str(plain), str(target), cog_profiles.get(PROFILE), quiet=True, in_memory=False)
    finally:
        plain.unlink(missing_ok=True)
