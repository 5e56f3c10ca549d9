"""A STAC API with the Transactions extension that a campaign's items are published to as they are
collected: the Collection created (or replaced) before the first item, each Item upserted (POST, and PUT
over an item the API holds already), so a resume or ``catalog --publish`` publishes each item once, the
last version winning.

Every error of the HTTP client (requests, connections retried by urllib3 on refusals and 502/503/504)
becomes a :class:`PublishError` in one place (:meth:`StacApi._send`), with the server's own message; a
token named by ``auth.token_env`` is sent as a Bearer header and never written anywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ogc_upscaler.errors import UpscalerError, redact

TIMEOUT = 60.0


class PublishError(UpscalerError):
    """The STAC API refused or failed a publication; ``retryable`` when trying later may help."""

    default_hint = "check publish: in the config (stac_api, collection, auth) and the API's own log"

    def __init__(self, message: str, *, retryable: bool, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retryable = retryable


@dataclass(frozen=True)
class Publication:
    """Where items are published: the API's root URL, the collection's id, the environment variable
    holding a Bearer token (none: no Authorization header)."""

    stac_api: str
    collection: str
    token_env: str | None = None


class StacApi:
    """The Transactions endpoints of one collection of a STAC API."""

    def __init__(self, publication: Publication) -> None:
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        self.publication = publication
        self._root = publication.stac_api.rstrip("/")
        self._session = requests.Session()
        retry = Retry(total=4, backoff_factor=0.5, status_forcelist=(502, 503, 504), allowed_methods=None)
        self._session.mount("http://", HTTPAdapter(max_retries=retry))
        self._session.mount("https://", HTTPAdapter(max_retries=retry))
        if publication.token_env:
            token = os.environ.get(publication.token_env)
            if not token:
                raise PublishError(
                    f"publish: the environment variable {publication.token_env} holding the API's token is unset",
                    retryable=False,
                    hint=f"export {publication.token_env}=… before running",
                )
            self._session.headers["Authorization"] = f"Bearer {token}"

    def put_collection(self, body: dict[str, Any]) -> None:
        """Create the collection, or replace the one the API holds."""
        body = {**body, "id": self.publication.collection}
        if self._send("POST", "/collections", body, accept=(409,)) == 409:
            self._send("PUT", f"/collections/{self.publication.collection}", body)

    def put_item(self, body: dict[str, Any]) -> None:
        """Create the item in the collection, or replace the one the API holds."""
        body = {**body, "collection": self.publication.collection}
        items = f"/collections/{self.publication.collection}/items"
        if self._send("POST", items, body, accept=(409,)) == 409:
            self._send("PUT", f"{items}/{body['id']}", body)

    def close(self) -> None:
        """Let the connections go."""
        self._session.close()

    def _send(self, method: str, path: str, body: dict[str, Any], accept: tuple[int, ...] = ()) -> int:
        """The boundary: the status of a 2xx (or an ``accept``-ed) answer; anything else a PublishError."""
        import requests

        what = f"{method} {redact(self._root + path)}"
        try:
            answer = self._session.request(method, self._root + path, json=body, timeout=TIMEOUT)
        except requests.RequestException as err:
            raise PublishError(f"{what}: {redact(str(err))}", retryable=True) from None
        if answer.ok or answer.status_code in accept:
            return answer.status_code
        retryable = answer.status_code >= 500 or answer.status_code in (408, 429)
        detail = redact(answer.text.strip())[:500] or answer.reason
        raise PublishError(f"{what}: the API answered {answer.status_code}: {detail}", retryable=retryable)
