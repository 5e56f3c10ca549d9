"""Time windows from ranges and ISO 8601 steps."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from ogc_upscaler.errors import InvalidConfig
from ogc_upscaler.windows import windows_from_range


def test_monthly_windows_are_computed_from_the_start() -> None:
    windows = windows_from_range("2024-01-31", "2024-05-01", "P1M")
    assert [w.key for w in windows] == [
        "20240131-20240229",
        "20240229-20240331",
        "20240331-20240430",
        "20240430-20240501",
    ]
    assert windows[0].start == datetime(2024, 1, 31, tzinfo=UTC)


def test_quarterly_windows_cover_the_range_without_gaps() -> None:
    windows = windows_from_range("2024-01-01", "2025-01-01", "P3M")
    assert len(windows) == 4
    assert all(a.end == b.start for a, b in itertools.pairwise(windows))
    assert windows[-1].interval == "2024-10-01T00:00:00Z/2025-01-01T00:00:00Z"


def test_sub_daily_windows_keep_the_time_in_their_key() -> None:
    windows = windows_from_range("2024-01-01T00:00:00Z", "2024-01-01T12:00:00Z", "PT6H")
    assert [w.key for w in windows] == ["20240101-20240101T060000", "20240101T060000-20240101T120000"]


@pytest.mark.parametrize(
    ("start", "end", "step", "message"),
    [
        ("2024-01-01", "2024-02-01", "monthly", "not an ISO 8601 duration"),
        ("2024-01-01", "2024-02-01", "P0D", "positive"),
        ("2024-02-01", "2024-01-01", "P1M", "after start"),
        ("2024-13-01", "2025-01-01", "P1M", "not an ISO 8601 date"),
        ("2000-01-01", "2024-01-01", "PT1S", "more than"),
    ],
)
def test_bad_ranges_get_clear_errors(start, end, step, message) -> None:
    with pytest.raises(InvalidConfig, match=message):
        windows_from_range(start, end, step)
