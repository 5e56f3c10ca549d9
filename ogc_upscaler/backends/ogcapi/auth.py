"""How the OGC API client authenticates, and to whom it shows its credentials.

Secrets are named in the config (environment variables, files), never written inline,
and sent only in headers, only to the endpoint's own origin and the origins the config
adds (``auth.send_to``): an output link to another host (an S3 presigned URL, a CDN)
gets no ``Authorization`` header, which would leak the token and break the signature.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Literal

import requests
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ogc_upscaler.backends.ogcapi.http import mapped, origin
from ogc_upscaler.errors import BackendError, InvalidConfig


class Auth(BaseModel):
    """How a remote backend authenticates; secrets are named (environment variables, files), never inline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["none", "bearer", "basic", "oidc"] = "none"
    token_env: str | None = None
    token_file: str | None = None
    username: str | None = None
    password_env: str | None = None
    token_url: str | None = None
    client_id: str | None = None
    client_secret_env: str | None = None
    scope: str | None = None
    send_to: tuple[str, ...] = Field(
        default=(), description="origins besides the endpoint's own that get the credentials (https://host[:port])"
    )

    @model_validator(mode="after")
    def _complete(self) -> Auth:
        needed = {
            "bearer": ["token_env|token_file"],
            "basic": ["username", "password_env"],
            "oidc": ["token_url", "client_id", "client_secret_env"],
        }.get(self.type, [])
        missing = [n for n in needed if not any(getattr(self, k) for k in n.split("|"))]
        if missing:
            raise ValueError(f"auth type {self.type} needs {', '.join(m.replace('|', ' or ') for m in missing)}")
        for given in self.send_to:
            if origin(given) != given.rstrip("/").lower() or "://" not in given:
                raise ValueError(f"send_to takes origins such as https://data.example.org, got {given!r}")
        return self


class Credentials(requests.auth.AuthBase):
    """Adds the Authorization header for the allowed origins; OIDC client-credentials tokens are refreshed
    before they expire."""

    def __init__(self, auth: Auth, session: requests.Session, endpoint: str) -> None:
        self.auth = auth
        self.session = session
        self.allowed = frozenset({origin(endpoint), *(origin(o) for o in auth.send_to)})
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if origin(request.url or "") not in self.allowed:
            return request
        kind = self.auth.type
        if kind == "bearer":
            request.headers["Authorization"] = f"Bearer {self._static_token()}"
        elif kind == "basic":
            password = secret(self.auth.password_env, None, "auth.password_env")
            requests.auth.HTTPBasicAuth(self.auth.username or "", password)(request)
        elif kind == "oidc":
            request.headers["Authorization"] = f"Bearer {self._oidc_token()}"
        return request

    def refresh(self) -> None:
        """Forget a cached token (after a 401)."""
        self._expires = 0.0

    def _static_token(self) -> str:
        return secret(self.auth.token_env, self.auth.token_file, "auth.token_env or auth.token_file")

    def _oidc_token(self) -> str:
        with self._lock:
            if self._token and time.time() < self._expires - 60:
                return self._token
            url = self.auth.token_url or ""
            data = {
                "grant_type": "client_credentials",
                "client_id": self.auth.client_id or "",
                "client_secret": secret(self.auth.client_secret_env, None, "auth.client_secret_env"),
            }
            if self.auth.scope:
                data["scope"] = self.auth.scope
            with mapped("POST", url, timeout=30):
                reply = self.session.post(url, data=data, timeout=30)
            if reply.status_code != 200:
                raise BackendError(
                    f"token endpoint {url} answered {reply.status_code}",
                    retryable=reply.status_code >= 500 or reply.status_code == 429,
                    hint="check the client id and secret",
                )
            self._token, lifetime = _token_of(reply, url)
            self._expires = time.time() + lifetime
            return self._token


def _token_of(reply: requests.Response, url: str) -> tuple[str, float]:
    """The access token and its lifetime from a token endpoint's answer (RFC 6749 section 5.1)."""
    try:
        body = reply.json()
    except ValueError:
        body = None
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise BackendError(
            f"token endpoint {url} answered without an access_token",
            retryable=True,
            hint="the identity provider's answer is not an OAuth2 token response; check token_url",
        )
    try:
        lifetime = float(body.get("expires_in", 300))
    except (TypeError, ValueError):
        lifetime = 300.0
    return token, lifetime


def secret(env: str | None, file: str | None, what: str) -> str:
    """A secret from the environment variable or the file the config names."""
    if env and os.environ.get(env):
        return os.environ[env]
    if file and Path(file).is_file():
        return Path(file).read_text().strip()
    raise InvalidConfig(
        f"backend auth: no secret found in {what}", hint="set the environment variable or write the file it names"
    )
