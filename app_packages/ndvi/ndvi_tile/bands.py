"""Finding the red and near-infrared assets of a STAC item, and their reflectance scaling."""

from __future__ import annotations

from dataclasses import dataclass

import pystac

#: Asset keys tried when no asset declares its band by common name.
RED_KEYS = ("red", "B04", "b04", "B4")
NIR_KEYS = ("nir", "B08", "b08", "B8", "nir08")


@dataclass(frozen=True)
class Band:
    """One band of one item: where its COG is and how to turn its values into reflectance."""

    href: str
    scale: float
    offset: float
    nodata: float | None


def find_band(item: pystac.Item, common_name: str, keys: tuple[str, ...]) -> Band | None:
    """The asset of ``item`` carrying the band ``common_name`` (by eo:bands, else by key)."""
    for asset in item.assets.values():
        names = [b.get("common_name") for b in asset.extra_fields.get("eo:bands", [])]
        if common_name in names:
            return _band(asset)
    for key in keys:
        if key in item.assets:
            return _band(item.assets[key])
    return None


def _band(asset: pystac.Asset) -> Band:
    raster = (asset.extra_fields.get("raster:bands") or [{}])[0]
    scale = raster.get("scale", 1.0)
    offset = raster.get("offset", 0.0)
    return Band(asset.get_absolute_href() or asset.href, float(scale), float(offset), raster.get("nodata"))
