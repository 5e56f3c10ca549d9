"""One state per tile from the states of its jobs, and the colour each state is drawn in.

A tile holds one job per window and parameter set. It shows failed if any of its jobs failed, else
its least advanced job's state: the PNG maps, ``status --map`` and the watch page all use this order.
"""

from __future__ import annotations

from collections.abc import Iterable

#: States in the order a tile shows them: the first its jobs hold wins.
ORDER = (
    "failed",
    "in_doubt",
    "cancelled",
    "planned",
    "waiting",
    "submitted",
    "running",
    "succeeded",
    "collected",
    "no_inputs",
)

#: The colour of each state on every map.
COLOURS = {
    "failed": "#d62728",
    "in_doubt": "#e377c2",
    "cancelled": "#7f7f7f",
    "planned": "#c6dbef",
    "waiting": "#ff7f0e",
    "submitted": "#9467bd",
    "running": "#1f77b4",
    "succeeded": "#98df8a",
    "collected": "#2ca02c",
    "no_inputs": "#f2e6c9",
}

_RANK = {state: i for i, state in enumerate(ORDER)}


def per_tile(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The state of each tile from ``(tile_id, job state)`` pairs.

    >>> per_tile([("a", "collected"), ("a", "running"), ("b", "no_inputs"), ("b", "failed")])
    {'a': 'running', 'b': 'failed'}
    """
    out: dict[str, str] = {}
    for tile, state in pairs:
        if tile not in out or _RANK.get(state, 0) < _RANK.get(out[tile], 0):
            out[tile] = state
    return out
