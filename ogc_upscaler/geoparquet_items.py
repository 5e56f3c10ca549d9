"""The campaign's items as stac-geoparquet (one row per item, written by the stac-geoparquet library on
pyarrow), for the tools that read catalogs of 100,000 items at once: streamed from the local catalog in
chunks, written atomically, every asset href absolute (the bucket's ``s3://`` where results are uploaded,
else the file on this machine) so the table stands on its own."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ogc_upscaler.errors import InvalidInput
from ogc_upscaler.upload import is_relative, item_paths, local_assets

CHUNK = 8192


def write_stac_geoparquet(output: Path, path: Path, href: Callable[[str], str] | None = None) -> int:
    """Write the items of the local catalog ``output`` to ``path``; ``href`` turns a catalog-relative path
    into the absolute href written (default: the local file). Returns the number of items."""
    try:
        from stac_geoparquet.arrow import parse_stac_items_to_arrow, to_parquet
    except ImportError:
        raise InvalidInput(
            "export --stac-geoparquet needs the stac-geoparquet package", hint="pip install 'ogc-upscaler[parquet]'"
        ) from None
    if not (output / "collection.json").exists():
        raise InvalidInput(f"export: no catalog at {output}", hint="`ogc-upscaler catalog CONFIG` writes it")
    href = href or (lambda relative: str((output / relative).resolve()))
    paths = item_paths(output)
    if not paths:
        raise InvalidInput(f"export: the catalog at {output} holds no items yet", hint="run the campaign first")
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        to_parquet(parse_stac_items_to_arrow(_items(output, paths, href), chunk_size=CHUNK), tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return len(paths)


def _items(output: Path, paths: list[str], href: Callable[[str], str]) -> Iterator[dict[str, Any]]:
    for item in paths:
        body = json.loads((output / item).read_text(encoding="utf-8"))
        for asset, relative in local_assets(body, item):
            asset["href"] = href(relative)
        body["links"] = [link for link in body.get("links", []) if not is_relative(link.get("href", ""))]
        yield body
