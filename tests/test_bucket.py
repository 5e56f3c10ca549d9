"""The bucket results are uploaded to, against a real S3-compatible server on loopback (signatures
checked): idempotent puts, credentials from the environment or a profile, errors that name the object and
never a secret."""

from __future__ import annotations

import pytest

from ogc_upscaler.bucket import Bucket, OutputError, S3Output, bucket_and_prefix


@pytest.fixture
def bucket(s3_server, monkeypatch) -> Bucket:
    for name, value in s3_server.credentials().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    name = s3_server.make_bucket("bucket-tests")
    return Bucket(S3Output(f"s3://{name}/campaign/a", endpoint_url=s3_server.endpoint))


def test_a_put_of_the_same_bytes_is_skipped_and_other_bytes_replace_them(bucket) -> None:
    assert bucket.put(b"tile 1", "items/t1/t1.json", "application/json") is True
    assert bucket.put(b"tile 1", "items/t1/t1.json", "application/json") is False, "the same bytes: left alone"
    assert bucket.put(b"tile 1, again", "items/t1/t1.json", "application/json") is True
    assert bucket.read("items/t1/t1.json") == b"tile 1, again"
    assert bucket.output.href("items/t1/t1.json") == "s3://bucket-tests/campaign/a/items/t1/t1.json"


def test_a_wrong_secret_is_an_output_error_naming_the_object_and_not_the_secret(s3_server, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-1234")
    name = s3_server.make_bucket("bucket-refused")
    refused = Bucket(S3Output(f"s3://{name}/x", endpoint_url=s3_server.endpoint))
    with pytest.raises(OutputError, match=rf"upload s3://{name}/x/a.json: .*(privileges|Forbidden)") as err:
        refused.put(b"{}", "a.json", "application/json")
    assert "not-the-secret-1234" not in str(err.value) and s3_server.secret not in str(err.value)
    assert "credentials" in (err.value.hint or "")


def test_a_missing_bucket_is_an_output_error(bucket, s3_server) -> None:
    missing = Bucket(S3Output("s3://no-such-bucket/x", endpoint_url=s3_server.endpoint))
    with pytest.raises(OutputError, match=r"upload s3://no-such-bucket/x/a\.json"):
        missing.put(b"{}", "a.json", "application/json")


def test_credentials_come_from_a_profile_of_the_shared_file(s3_server, tmp_path, monkeypatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    shared = tmp_path / "credentials"
    shared.write_text(
        f"[default]\naws_access_key_id = nobody\naws_secret_access_key = nothing\n\n"
        f"[upscaling]\naws_access_key_id = {s3_server.key}\naws_secret_access_key = {s3_server.secret}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(shared))
    name = s3_server.make_bucket("bucket-profile")
    profiled = Bucket(S3Output(f"s3://{name}", endpoint_url=s3_server.endpoint, profile="upscaling"))
    assert profiled.put(b"x", "x.txt", "text/plain") and profiled.read("x.txt") == b"x"
    with pytest.raises(OutputError, match=r"profile 'other' is not in .*credentials") as err:
        Bucket(S3Output(f"s3://{name}", endpoint_url=s3_server.endpoint, profile="other"))
    assert err.value.hint == "its sections: default, upscaling"


@pytest.mark.parametrize("url", ["s3://", "s3://A_Bucket/x", "gs://bucket/x", "s3:/bucket"])
def test_a_location_that_names_no_bucket_is_refused(url) -> None:
    with pytest.raises(OutputError, match="is not an S3 location"):
        bucket_and_prefix(url)
