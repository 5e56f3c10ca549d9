"""What a campaign would do, known before its first job: ``ogc-upscaler check``, and what ``plan`` checks first.

A sample of tiles spread over the AOI (:mod:`ogc_upscaler.sample`) has every template rendered for each
window and parameter set, its inputs searched and each job checked against the package (or the process
description) as ``run`` would. The inputs' collections must exist; where the AOI or a window lies outside
them, and how many jobs would find no items, is said before anything is planned; parameter sets that no
template tells apart (they multiply jobs with identical inputs) are warned about.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely

from ogc_upscaler.attributes import with_attributes
from ogc_upscaler.campaign import Campaign
from ogc_upscaler.discovery import Coverage, InputSource
from ogc_upscaler.plan import input_source, job_specs
from ogc_upscaler.projection import area_km2
from ogc_upscaler.sample import spread
from ogc_upscaler.store import JobSpec, State

#: Tiles in the sample ``check`` (and ``plan``) renders and checks, unless told otherwise.
SAMPLE_TILES = 20
#: Characters of the example job's inputs shown (a job can carry hundreds of item links).
EXAMPLE_CHARS = 400


@dataclass(frozen=True)
class Survey:
    """What checking a campaign found: its size, its sample, its inputs, and what to warn about."""

    campaign: str
    grid: str
    tiles: int
    km2: float
    windows: int
    parameter_sets: int
    sampled: tuple[JobSpec, ...]
    coverage: Coverage | None
    no_inputs: int  # sampled jobs that found no items
    warnings: tuple[str, ...]

    @property
    def jobs(self) -> int:
        """Jobs the campaign plans."""
        return self.tiles * self.windows * self.parameter_sets

    def summary(self) -> str:
        """A few lines for the terminal, the warnings last."""
        sets = f" × {self.parameter_sets} parameter sets" if self.parameter_sets > 1 else ""
        tiles = len({s.tile_id for s in self.sampled})
        lines = [
            f"campaign {self.campaign} on grid {self.grid}: {self.tiles:,} tiles × {self.windows:,} windows{sets} "
            f"= {self.jobs:,} jobs over {self.km2:,.0f} km²",
            f"sample: {tiles:,} tiles spread over the AOI, {len(self.sampled):,} jobs rendered and checked",
        ]
        if self.coverage is not None:
            span = f"{_day(self.coverage.start)} to {_day(self.coverage.end)}"
            share = self.no_inputs / len(self.sampled) if self.sampled else 0.0
            lines += [
                f"inputs: collections {', '.join(self.coverage.collections)}, items from {span}",
                f"inputs: {self.no_inputs:,} of {len(self.sampled):,} sampled jobs found no items: about "
                f"{share * self.jobs:,.0f} of {self.jobs:,} jobs would be no_inputs and not run",
            ]
        if self.sampled:
            first = self.sampled[0]
            shown = first.inputs if len(first.inputs) <= EXAMPLE_CHARS else first.inputs[:EXAMPLE_CHARS] + " …"
            lines.append(f"example: job {first.job_id} gets {shown}")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def survey(
    campaign: Campaign,
    check: Callable[[JobSpec], None] | None = None,
    n: int = SAMPLE_TILES,
    source: InputSource | None = None,
) -> Survey:
    """Check ``campaign`` on ``n`` tiles spread over its AOI (``check`` takes each sampled job that would run,
    as the backend checks it; ``source`` is its input catalog, if the caller opened it); raises what ``run``
    would raise, and says what would surprise."""
    sample = spread(campaign.grid, campaign.aoi, n)
    tiles = with_attributes(sample.tiles, campaign.aoi)
    source = source or input_source(campaign)
    coverage = source.coverage() if source is not None else None
    specs = tuple(job_specs(campaign, tiles, source))
    for spec in specs:
        if check is not None and spec.state is State.PLANNED:
            check(spec)
    warnings = [*_unused_sets(campaign, specs)]
    if coverage is not None:
        warnings += _outside(campaign, coverage)
    return Survey(
        campaign=campaign.name,
        grid=campaign.grid.name,
        tiles=sample.total,
        km2=sample.total_km2,
        windows=len(campaign.windows),
        parameter_sets=max(1, len(campaign.parameter_sets)),
        sampled=specs,
        coverage=coverage,
        no_inputs=sum(s.state is State.NO_INPUTS for s in specs),
        warnings=tuple(warnings),
    )


def _unused_sets(campaign: Campaign, specs: tuple[JobSpec, ...]) -> list[str]:
    """Parameter sets whose jobs get the very inputs of another set's, on every sampled tile and window."""
    if len(campaign.parameter_sets) < 2 or not specs:
        return []
    by_set: dict[str, list[str]] = {}
    for spec in specs:
        by_set.setdefault(spec.params_name, []).append(spec.inputs)
    alike: dict[tuple[str, ...], list[str]] = {}
    for p in campaign.parameter_sets:
        alike.setdefault(tuple(by_set.get(p.name, ())), []).append(p.name)
    fields = sorted({k for p in campaign.parameter_sets for k in p.values})
    unused = ", ".join("{params." + f + "}" for f in fields) or "their values"
    return [
        f"parameter sets {', '.join(names)} give every sampled job the same inputs: no template uses {unused}, "
        "so they only multiply jobs (use the field in process.inputs, or keep one set)"
        for names in alike.values()
        if len(names) > 1
    ]


def _outside(campaign: Campaign, coverage: Coverage) -> list[str]:
    """Where the AOI, and when the windows, lie outside the collections' items."""
    out = []
    aoi_km2 = campaign.aoi.area_km2
    inside = shapely.intersection(campaign.aoi.geometry, coverage.footprint)
    missing = aoi_km2 - float(area_km2(np.asarray([inside]))[0]) if not inside.is_empty else aoi_km2
    if missing > 1e-3 * aoi_km2:
        out.append(
            f"{missing / aoi_km2:.0%} of the AOI ({missing:,.0f} km²) lies outside the items of "
            f"{', '.join(coverage.collections)}: its tiles will find no inputs"
        )
    late = [w for w in campaign.windows if coverage.end is not None and w.start > coverage.end]
    early = [w for w in campaign.windows if coverage.start is not None and w.end <= coverage.start]
    for windows, side in ((early, "before"), (late, "after")):
        if windows:
            shown = ", ".join(w.interval for w in windows[:3]) + (", …" if len(windows) > 3 else "")
            when = coverage.start if side == "before" else coverage.end
            out.append(
                f"{len(windows)} of {len(campaign.windows)} windows lie {side} the items ({side} {_day(when)}): "
                f"{shown}; their jobs will find no inputs"
            )
    return out


def _day(moment: object) -> str:
    return "?" if moment is None else f"{moment:%Y-%m-%d}"
