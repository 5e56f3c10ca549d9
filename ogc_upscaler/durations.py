"""Lengths of time as people read them, one way everywhere (estimates, the progress bar, status)."""

from __future__ import annotations


def duration(seconds: float) -> str:
    """A length of time, to the second under two minutes, then to the minute, then in hours and days.

    >>> [duration(s) for s in (7.4, 125, 3 * 3600 + 7 * 60 + 9, 3 * 86400)]
    ['7 s', '2 min 05 s', '3 h 07 min', '3.0 days']
    """
    whole = max(0, round(seconds))
    if whole < 120:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 120:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{whole / 86400:.1f} days"
