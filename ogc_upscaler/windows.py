"""Time windows: half-open intervals ``[start, end)`` in UTC, from a range and an ISO 8601 step.

>>> [w.key for w in windows_from_range("2024-01-01", "2024-04-01", "P1M")]
['20240101-20240201', '20240201-20240301', '20240301-20240401']
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property

import isodate

from ogc_upscaler.errors import InvalidConfig

#: More windows than this from one range is almost surely a wrong step.
MAX_WINDOWS = 100_000


@dataclass(frozen=True, order=True)
class Window:
    """A half-open time interval ``[start, end)`` in UTC."""

    start: datetime
    end: datetime

    @cached_property
    def key(self) -> str:
        """A compact, sortable, file-name-safe key: ``20240101-20240201``."""
        return f"{_compact(self.start)}-{_compact(self.end)}"

    @cached_property
    def interval(self) -> str:
        """The ISO 8601 interval ``start/end``, as STAC searches take it."""
        return f"{_iso(self.start)}/{_iso(self.end)}"

    def __str__(self) -> str:
        return self.interval


def parse_instant(value: str | date | datetime, where: str) -> datetime:
    """A UTC datetime from an ISO 8601 date or datetime (naive values are UTC)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise InvalidConfig(
                f"{where}: {value!r} is not an ISO 8601 date or datetime",
                hint="write e.g. 2024-01-01 or 2024-01-01T00:00:00Z",
            ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_step(value: str, where: str) -> timedelta | isodate.Duration:
    """An ISO 8601 duration such as ``P1M``, ``P10D`` or ``PT6H``."""
    try:
        step = isodate.parse_duration(str(value))
    except (isodate.ISO8601Error, ValueError):
        raise InvalidConfig(
            f"{where}: {value!r} is not an ISO 8601 duration", hint="write e.g. P1M (a month), P10D, P3M or PT12H"
        ) from None
    start = datetime(2000, 1, 1, tzinfo=UTC)
    if start + step <= start:
        raise InvalidConfig(f"{where}: the step {value!r} must be positive", hint="write e.g. P1M or P10D")
    return step


def windows_from_range(start: str | date | datetime, end: str | date | datetime, step: str) -> list[Window]:
    """Consecutive windows from ``start`` to ``end`` by ``step``; the last one is cut at ``end``.

    Each window is ``start + k × step`` to ``start + (k+1) × step`` (computed from
    the start, so month lengths never drift).
    """
    first, last = parse_instant(start, "time.start"), parse_instant(end, "time.end")
    if last <= first:
        raise InvalidConfig(f"time: end {_iso(last)} must come after start {_iso(first)}", hint="swap start and end")
    delta = parse_step(step, "time.step")
    out: list[Window] = []
    k = 0
    while True:
        lo, hi = first + delta * k, min(first + delta * (k + 1), last)
        if lo >= last:
            return out
        out.append(Window(lo, hi))
        k += 1
        if k > MAX_WINDOWS:
            raise InvalidConfig(f"time: step {step} gives more than {MAX_WINDOWS:,} windows", hint="use a longer step")


def _compact(moment: datetime) -> str:
    if moment.time() == datetime.min.time():
        return moment.strftime("%Y%m%d")
    return moment.strftime("%Y%m%dT%H%M%S")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
