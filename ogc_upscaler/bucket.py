"""An S3 bucket (AWS, or any S3-compatible store) that a campaign's results are uploaded to.

Uploads are idempotent: an object already there with the same size and MD5 (the ETag S3 gives an object
put in one part, as every upload here is) is left alone, so a resume or a second ``catalog`` run neither
duplicates nor rewrites one, and an interrupted upload leaves nothing (a PUT is atomic). Every error of the
client, obstore, becomes an :class:`OutputError` in one place (:meth:`Bucket._calling`), its text redacted:
credentials come from the environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``), a named profile of the shared credentials file, or the instance's role, and never
reach the store, the logs, an error or the catalog.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ogc_upscaler.errors import UpscalerError, redact
from ogc_upscaler.s3_access import CredentialsError, S3Access

#: Largest object put in one request (S3 takes up to 5 GiB; a tile's COG is far smaller).
SINGLE_PUT_LIMIT = 5 * 2**30
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


class OutputError(UpscalerError):
    """Results cannot be written to the campaign's output (a bucket that is missing, refuses us, or fails)."""

    default_hint = (
        "check output: in the config (s3://bucket/prefix, endpoint_url for an S3-compatible store) and the "
        "credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or a profile)"
    )


@dataclass(frozen=True)
class S3Output:
    """Where results go in object storage: ``s3://bucket/prefix``, at ``endpoint_url`` for an S3-compatible
    store (AWS's regional endpoint otherwise), signed with the credentials of ``profile`` or the environment."""

    url: str
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None

    def __post_init__(self) -> None:
        bucket_and_prefix(self.url)

    @property
    def bucket(self) -> str:
        """The bucket's name."""
        return bucket_and_prefix(self.url)[0]

    @property
    def prefix(self) -> str:
        """The key prefix results go under ('' for the bucket's root), without a trailing slash."""
        return bucket_and_prefix(self.url)[1]

    @property
    def access(self) -> S3Access:
        """How the bucket is reached."""
        return S3Access(self.endpoint_url, self.region, self.profile)

    def key(self, relative: str) -> str:
        """The object key of a file at ``relative`` in the local catalog."""
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def href(self, relative: str) -> str:
        """The absolute ``s3://`` href of a file at ``relative`` in the local catalog."""
        return f"s3://{self.bucket}/{self.key(relative)}"


def bucket_and_prefix(url: str) -> tuple[str, str]:
    """``("bucket", "a/b")`` from ``s3://bucket/a/b/``; a URL that names no valid bucket is refused."""
    match = re.fullmatch(r"s3://([^/]+)/?(.*)", url)
    if match is None or not _BUCKET.fullmatch(match[1]):
        raise OutputError(
            f"output {url!r} is not an S3 location", hint="write it as s3://bucket/prefix (bucket names: a-z 0-9 . -)"
        )
    return match[1], match[2].strip("/")


class Bucket:
    """The bucket of an :class:`S3Output`, through obstore."""

    def __init__(self, output: S3Output) -> None:
        from obstore.store import S3Store

        self.output = output
        #: How many objects this bucket has been sent (an object already there with the same bytes is not).
        self.puts = 0
        with self._calling(f"open {redact(output.url)}"):
            self._store = S3Store(output.bucket, **output.access.store_options())

    def upload(self, path: Path, relative: str, content_type: str) -> bool:
        """Put the local file ``path`` at the key of ``relative``; False when the very same bytes are there."""
        data = path.read_bytes()
        if len(data) > SINGLE_PUT_LIMIT:
            raise OutputError(f"{path}: {len(data):,} bytes is more than one upload takes ({SINGLE_PUT_LIMIT:,})")
        return self.put(data, relative, content_type)

    def put(self, data: bytes, relative: str, content_type: str) -> bool:
        """Put ``data`` at the key of ``relative``; False when the very same bytes are there already."""
        import obstore

        key = self.output.key(relative)
        with self._calling(f"upload {self.output.href(relative)}"):
            if self._holds(key, data):
                return False
            obstore.put(self._store, key, data, use_multipart=False, attributes={"Content-Type": content_type})
        self.puts += 1
        return True

    def read(self, relative: str) -> bytes:
        """The bytes of the object at the key of ``relative``."""
        import obstore

        with self._calling(f"read {self.output.href(relative)}"):
            return bytes(obstore.get(self._store, self.output.key(relative)).bytes())

    def _holds(self, key: str, data: bytes) -> bool:
        import obstore

        try:
            meta = obstore.head(self._store, key)
        except FileNotFoundError:  # obstore's NotFoundError arrives as the built-in one
            return False
        etag = (meta.get("e_tag") or "").strip('"')
        return meta["size"] == len(data) and etag == hashlib.md5(data, usedforsecurity=False).hexdigest()

    @contextlib.contextmanager
    def _calling(self, what: str) -> Iterator[None]:
        """The boundary: an obstore error (or a refused connection) becomes an :class:`OutputError`."""
        from obstore.exceptions import BaseError

        try:
            yield
        except CredentialsError as err:
            raise OutputError(err.message, hint=err.hint) from None
        except (BaseError, OSError) as err:
            first = redact(str(err)).strip().splitlines()
            raise OutputError(f"{what}: {first[0] if first else type(err).__name__}") from None
