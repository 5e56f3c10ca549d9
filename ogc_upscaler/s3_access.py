"""How the manager and every job reach S3 (AWS, or an S3-compatible store at an endpoint URL).

Three clients read S3 in a campaign, and each has its own names for the same settings:

- GDAL (rasterio opening an ``s3://`` asset as ``/vsis3/``): ``AWS_S3_ENDPOINT`` (host and port, no
  scheme), ``AWS_HTTPS=NO`` for plain http, ``AWS_VIRTUAL_HOSTING=FALSE`` for path-style requests;
- obstore (reading STAC JSON at ``s3://``, uploading results): ``AWS_ENDPOINT_URL``, ``AWS_ALLOW_HTTP``;
- boto3 and Toil's S3 job store: ``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_S3``.

:meth:`S3Access.environment` writes all of them from one setting, and :func:`job_environment` is what a
job's processes get: the S3 variables of this process's environment (``AWS_ENDPOINT_URL`` alone is
enough: GDAL's are derived from it), overridden by the campaign's settings. A profile's keys are read
from the shared credentials file here, because a job runs with its own ``HOME``; they live only in the
environment of the processes, never in the store, a log, an error or the catalog.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ogc_upscaler.errors import UpscalerError

#: The variables that say how to reach S3, passed on to every job (cwltool keeps only those it is told to).
S3_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ALLOW_HTTP",
    "AWS_S3_ENDPOINT",
    "AWS_HTTPS",
    "AWS_VIRTUAL_HOSTING",
    "AWS_NO_SIGN_REQUEST",
    "AWS_SKIP_SIGNATURE",
    "AWS_REQUEST_PAYER",
)

#: The variables that are secrets: never printed (cwltool prints a container's ``--env`` in its log).
SECRETS = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"})


class CredentialsError(UpscalerError):
    """The credentials S3 requests are to be signed with cannot be read."""

    default_hint = "name a profile of the shared credentials file, or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"


@dataclass(frozen=True)
class S3Access:
    """An S3-compatible store's ``endpoint_url`` (AWS's regional endpoint when None), the ``region``, and
    the ``profile`` of the shared credentials file whose keys sign requests (else the environment's)."""

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None

    def environment(self) -> dict[str, str]:
        """These settings in the variables of GDAL, obstore, boto3 and Toil (see the module)."""
        env = endpoint_variables(self.endpoint_url) if self.endpoint_url else {}
        if self.region:
            env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = self.region
        try:  # also AWS_PROFILE's: a job's HOME is its own folder
            keys = profile_credentials(self.profile)
        except CredentialsError:
            if self.profile:
                raise
            keys = {}  # an AWS_PROFILE set for another use: passed on as it is, for the client to judge
        if keys:
            env["AWS_ACCESS_KEY_ID"] = keys["access_key_id"]
            env["AWS_SECRET_ACCESS_KEY"] = keys["secret_access_key"]
            if "session_token" in keys:
                env["AWS_SESSION_TOKEN"] = keys["session_token"]
        return env

    def store_options(self) -> dict[str, Any]:
        """obstore's ``S3Store`` keywords for these settings (credentials: the profile's, else the
        environment's, which obstore reads itself)."""
        options: dict[str, Any] = {}
        endpoint = self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            options["endpoint"] = endpoint
            options["virtual_hosted_style_request"] = False
            if endpoint.startswith("http://"):
                options["client_options"] = {"allow_http": True}
        region = self.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        options["region"] = region or "us-east-1"
        return {**options, **profile_credentials(self.profile)}


def endpoint_variables(endpoint_url: str) -> dict[str, str]:
    """The variables that point every client at ``endpoint_url`` (path-style requests: what an
    S3-compatible store serves; plain http allowed where the URL says http)."""
    parts = urlsplit(endpoint_url)
    plain = parts.scheme == "http"
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ENDPOINT_URL_S3": endpoint_url,
        "AWS_ALLOW_HTTP": "true" if plain else "false",
        "AWS_S3_ENDPOINT": parts.netloc,
        "AWS_HTTPS": "NO" if plain else "YES",
        "AWS_VIRTUAL_HOSTING": "FALSE",
    }


def job_environment(access: S3Access | None = None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The S3 variables a job's processes get: those of ``environ`` (this process's environment), with
    GDAL's derived from an ``AWS_ENDPOINT_URL`` that has no ``AWS_S3_ENDPOINT`` beside it, then ``access``'s."""
    environ = os.environ if environ is None else environ
    env = {name: environ[name] for name in S3_VARIABLES if environ.get(name)}
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint and "AWS_S3_ENDPOINT" not in env:
        env = {**endpoint_variables(endpoint), **env}
    return {**env, **(access or S3Access()).environment()}


def profile_credentials(profile: str | None) -> dict[str, str]:
    """The keys of ``profile`` (or ``AWS_PROFILE``) in the shared credentials file
    (``AWS_SHARED_CREDENTIALS_FILE``, default ``~/.aws/credentials``); none when no profile is named, so the
    client takes them from the environment or the instance's role."""
    name = profile or (None if os.environ.get("AWS_ACCESS_KEY_ID") else os.environ.get("AWS_PROFILE"))
    if name is None:
        return {}
    path = Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")).expanduser()
    parser = configparser.ConfigParser()
    try:
        parser.read_string(path.read_text(encoding="utf-8"), source=str(path))
    except (OSError, configparser.Error) as err:
        raise CredentialsError(f"profile {name!r}: cannot read {path} ({type(err).__name__})") from None
    if not parser.has_section(name):
        raise CredentialsError(
            f"profile {name!r} is not in {path}", hint=f"its sections: {', '.join(parser.sections())}"
        )
    section = parser[name]
    if "aws_access_key_id" not in section or "aws_secret_access_key" not in section:
        raise CredentialsError(f"profile {name!r} in {path} lacks aws_access_key_id or aws_secret_access_key")
    found = {"access_key_id": section["aws_access_key_id"], "secret_access_key": section["aws_secret_access_key"]}
    if "aws_session_token" in section:
        found["session_token"] = section["aws_session_token"]
    return found
