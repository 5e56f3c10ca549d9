"""Causes of failure: errors that differ only in what names the job share one cause; different ones do not."""

from __future__ import annotations

import pytest

from ogc_upscaler.causes import LENGTH, cause


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("band B08 missing in /data/tile-31-4.tif", "band B08 missing in /scratch/x/tile-2-17.tif"),
        ("HTTP 503 from http://a:5000/jobs/4f2a9c1e", "HTTP 503 from https://b/jobs/77aa0b3c"),
        ("killed after 3601.5 s (limit 3600 s)", "killed after 3722 s (limit 3600 s)"),
        ("job 0c8e2f6a-1b2c-4d5e-8f90-123456789abc vanished", "job 9d1e2f6a-1b2c-4d5e-8f90-abcdef012345 vanished"),
        ("Traceback (most recent call last):\n  ...\nMemoryError: 2.5e9 bytes", "MemoryError: 3e9 bytes\n"),
    ],
)
def test_errors_naming_different_jobs_share_a_cause(one, other) -> None:
    assert cause(one, "run:permanent") == cause(other, "run:exhausted")


def test_different_errors_or_steps_are_different_causes() -> None:
    assert cause("band B08 missing", "run:permanent") != cause("band B04 missing", "run:permanent")
    assert cause("HTTP 503", "submit:exhausted") != cause("HTTP 503", "run:exhausted")
    assert cause(None, None) == "error: no error recorded"


def test_a_long_error_is_cut_to_a_readable_cause() -> None:
    found = cause("x" * 5000, "collect:permanent")
    assert len(found) <= LENGTH + len("collect: ") and found.endswith("…")
