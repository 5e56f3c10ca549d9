"""STAC JSON read where it is on S3: pystac's I/O with ``s3://`` hrefs read through obstore.

pystac reads local paths and http(s) URLs itself; :class:`S3StacIO` adds ``s3://`` (one store per bucket,
reached with :class:`~ogc_upscaler.s3_access.S3Access`, by default the environment's settings), so a
static catalog, the items a job stages and the items an endpoint checks can all live in a bucket. Every
error of obstore becomes an ``OSError`` in the store's words (redacted), which each caller already reports
with the href of the document that could not be read.
"""

from __future__ import annotations

from typing import Any

from pystac.stac_io import DefaultStacIO

from ogc_upscaler.errors import redact
from ogc_upscaler.s3_access import S3Access


class S3StacIO(DefaultStacIO):
    """pystac's default I/O, with ``s3://`` hrefs read from the bucket (writing stays local)."""

    def __init__(self, access: S3Access | None = None) -> None:
        super().__init__()
        self.access = access or S3Access()
        self._stores: dict[str, Any] = {}

    def read_text_from_href(self, href: str) -> str:
        if not href.startswith("s3://"):
            return super().read_text_from_href(href)
        return self.read_bytes(href).decode("utf-8")

    def read_bytes(self, href: str) -> bytes:
        """The bytes of the object at the ``s3://`` ``href``."""
        import obstore
        from obstore.exceptions import BaseError

        bucket, _, key = href.removeprefix("s3://").partition("/")
        try:
            return bytes(obstore.get(self._store(bucket), key).bytes())
        except FileNotFoundError:
            raise FileNotFoundError("no such object in the bucket") from None
        except (BaseError, OSError) as err:  # the store's words, without its XML body
            first = redact(str(err)).strip().splitlines()
            raise OSError(first[0].partition(": <?xml")[0] if first else type(err).__name__) from None

    def _store(self, bucket: str) -> Any:
        if bucket not in self._stores:
            from obstore.store import S3Store

            self._stores[bucket] = S3Store(bucket, **self.access.store_options())
        return self._stores[bucket]


def stac_io_for(href: str, access: S3Access | None = None) -> DefaultStacIO | None:
    """An :class:`S3StacIO` for an ``s3://`` href, else None (pystac's own I/O)."""
    return S3StacIO(access) if href.startswith("s3://") else None
