"""The job plan: tiles × time windows × parameter sets, written to the store before anything runs.

The plan is made and written a part of the grid at a time (a UTM zone at a time), in one store
transaction, so a whole globe plans in the memory of one part and a plan refused half-way leaves
the store as it was.

Job ids are deterministic (``{tile}_{window}`` or ``{tile}_{window}_{parameters}``),
so planning the same campaign twice adds nothing, planning a grown AOI adds
only the new tiles' jobs, and a changed config that would alter jobs already
in the store is refused unless ``replan`` is asked for.

Process inputs are templates rendered per job with ``str.format`` fields:
``{tile.id}``, ``{tile.bbox}`` (buffered, native CRS), ``{tile.bbox_wgs84}``,
``{tile.crs}``, ``{tile.epsg}``, ``{tile.bounds}``, ``{tile.shape}``,
``{tile.transform}``, ``{tile.pixel_size}``, ``{tile.footprint}`` (GeoJSON), ``{tile.props.NAME}``
(an attribute of the AOI's or the grid file's feature, see :mod:`ogc_upscaler.attributes`),
``{window.start}``, ``{window.end}``, ``{window.interval}``, ``{window.key}``,
``{params.NAME}``, ``{inputs.stac_items}`` (the hrefs of the job's STAC items, when the
config has an ``inputs`` section), ``{job_id}``, ``{campaign}``. A string that is exactly one
field keeps the field's type (a number stays a number).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import string
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import shapely

from ogc_upscaler.attributes import check_priority, tile_rank, with_attributes
from ogc_upscaler.campaign import Campaign, ParameterSet
from ogc_upscaler.discovery import InputSource, open_source
from ogc_upscaler.errors import InvalidConfig, PlanConflict
from ogc_upscaler.grid import TileSet
from ogc_upscaler.store import JobSpec, JobStore, Planned, Planning, State, TileRecord
from ogc_upscaler.windows import Window

_ONE_FIELD = re.compile(r"^\{([^{}]+)\}$")
TEMPLATE_FIELDS = (
    "tile.id, tile.bbox, tile.bbox_wgs84, tile.crs, tile.epsg, tile.bounds, tile.shape, tile.transform, "
    "tile.pixel_size, tile.footprint, tile.props.NAME, window.start, window.end, window.interval, window.key, "
    "params.NAME, inputs.stac_items, job_id, campaign"
)


@dataclass(frozen=True)
class PlanReport:
    """What planning found and did."""

    tiles: int
    windows: int
    parameter_sets: int
    jobs: int
    added: int
    unchanged: int
    replanned: int
    removed: int
    stale: int
    tile_area_km2: float
    aoi_area_km2: float
    no_inputs: int = 0
    left: tuple[tuple[str, int], ...] = ()  # changed jobs --replan left as they were, per state
    grown: int = 0  # jobs without inputs before that found some now

    def summary(self) -> str:
        """A few lines for the terminal."""
        sets = f" × {self.parameter_sets} parameter sets" if self.parameter_sets > 1 else ""
        lines = [
            f"{self.tiles:,} tiles × {self.windows:,} windows{sets} = {self.jobs:,} jobs",
            f"area: {self.tile_area_km2:,.0f} km² of tiles covering an AOI of {self.aoi_area_km2:,.0f} km²",
            f"store: {self.added:,} added, {self.unchanged:,} already planned"
            + (f", {self.replanned:,} re-planned" if self.replanned else "")
            + (f", {self.removed:,} removed" if self.removed else ""),
        ]
        if self.no_inputs:
            lines.append(f"inputs: {self.no_inputs:,} jobs found no input items and will not run (state no_inputs)")
        if self.grown:
            lines.append(f"inputs: {self.grown:,} jobs that found no input items before found some now")
        for state, n in self.left:
            lines.append(f"replan: {n:,} {state} jobs left as they are: {_LEFT_WHY[state]}")
        if self.stale:
            lines.append(
                f"note: {self.stale:,} jobs in the store are no longer in the plan; they are kept "
                "(re-plan with --replan to remove those not yet run)"
            )
        return "\n".join(lines)


def campaign_parts(campaign: Campaign) -> Iterator[TileSet]:
    """The campaign's tiles with their attributes, a part of the grid at a time (:meth:`Grid.chunks`)."""
    for part in campaign.grid.chunks(campaign.aoi):
        yield with_attributes(part, campaign.aoi)


def input_source(campaign: Campaign) -> InputSource | None:
    """The campaign's input catalog (a static catalog or a STAC API), opened; None when it takes no inputs."""
    if campaign.inputs is None:
        return None
    i = campaign.inputs
    return open_source(i.stac, i.collections, i.base_dir, i.s3)


def tile_records(tiles: TileSet) -> Iterator[TileRecord]:
    """The tiles as the store keeps them, footprints as WKB."""
    wkb = shapely.to_wkb(tiles.footprints)
    areas = tiles.areas_km2
    for i, tile_id in enumerate(tiles.ids):
        bounds = (
            float(tiles.bounds[i, 0]),
            float(tiles.bounds[i, 1]),
            float(tiles.bounds[i, 2]),
            float(tiles.bounds[i, 3]),
        )
        props = tiles.props[i] if tiles.props is not None else {}
        yield TileRecord(str(tile_id), int(tiles.epsg[i]), bounds, wkb[i], float(areas[i]), props)


def job_specs(campaign: Campaign, tiles: TileSet, source: InputSource | None = None) -> Iterator[JobSpec]:
    """Every job of the campaign, in plan order: tile by tile, then window, then parameter set.

    With an input ``source``, each tile's items are searched once for all windows;
    a job whose window has no items is planned in state ``no_inputs``. With ``priority``,
    a tile's jobs get its rank (:func:`~ogc_upscaler.attributes.tile_rank`).
    """
    sets = campaign.parameter_sets or (ParameterSet("default"),)
    named = bool(campaign.parameter_sets)
    params = [(p, SimpleNamespace(**p.values), json.dumps(p.values, sort_keys=True)) for p in sets]
    windows = [(w, _window_view(w)) for w in campaign.windows]
    templated = bool(campaign.process.inputs)
    for i in range(len(tiles)):
        tile = tiles[i]
        tile_key = json.dumps(
            [tile.id, tile.epsg, list(tile.bounds), tile.pixel_size, tile.buffer_px, campaign.process.application]
        )
        found = source.items(tile.footprint, campaign.windows) if source is not None else None
        rank = 0.0 if campaign.priority is None else tile_rank(tile.props, campaign.priority)
        for j, (window, view) in enumerate(windows):
            items = None if found is None else found[j]
            state = State.NO_INPUTS if items == [] else State.PLANNED
            for pset, namespace, params_json in params:
                job_id = f"{tile.id}_{window.key}" + (f"_{pset.name}" if named else "")
                inputs = "{}"
                if templated:
                    context = {
                        "tile": tile,
                        "window": view,
                        "params": namespace,
                        "inputs": _InputsView(items),
                        "job_id": job_id,
                        "campaign": campaign.name,
                    }
                    inputs = json.dumps(render(campaign.process.inputs, context), sort_keys=True)
                digest = hashlib.sha256(f"{tile_key}|{window.interval}|{params_json}|{inputs}".encode())
                yield JobSpec(
                    job_id,
                    tile.id,
                    view.start,
                    view.end,
                    pset.name,
                    params_json,
                    inputs,
                    digest.hexdigest()[:32],
                    state,
                    rank,
                )


class _InputsView:
    """``{inputs.stac_items}`` in templates: the job's item hrefs, when inputs are searched."""

    def __init__(self, items: list[str] | None) -> None:
        self._items = items

    @property
    def stac_items(self) -> list[str]:
        if self._items is None:
            raise AttributeError("stac_items: the config has no `inputs:` section to search STAC items with")
        return self._items


#: States of jobs that ``--replan`` may give a new spec: nothing of them runs, nothing was collected.
REPLANNABLE = frozenset({State.PLANNED, State.NO_INPUTS, State.WAITING, State.FAILED, State.CANCELLED})
_LEFT_WHY = {
    State.SUBMITTED.value: "they run with the old config (cancel them first to run them with the new one)",
    State.RUNNING.value: "they run with the old config (cancel them first to run them with the new one)",
    State.IN_DOUBT.value: "they may run with the old config (`retry --in-doubt` or cancel them first)",
    State.SUCCEEDED.value: "they ran with the old config and are being collected",
    State.COLLECTED.value: "their outputs, made with the old config, are kept",
}


def plan(
    campaign: Campaign,
    store: JobStore,
    *,
    replan: bool = False,
    parts: Iterable[TileSet] | None = None,
    check: Callable[[JobSpec], None] | None = None,
    partial: bool = False,
    source: InputSource | None = None,
) -> PlanReport:
    """Write the campaign's jobs to the store; see the module docstring for what is refused.

    ``parts`` are the campaign's tiles (default :func:`campaign_parts`), planned and written one
    after the other in one transaction; ``partial`` says they are only some of them (a sample):
    nothing else in the store is stale, and the store is not marked as holding the whole plan, so
    the next run plans the rest. ``check`` is called with every job that would run: when it
    raises, the store is left as it was. Jobs that found no inputs before and find some now (the
    archive grew) are planned again without ``replan``: they never ran. ``source`` is the campaign's
    input catalog when the caller opened it already (else it is opened here).
    """
    parts = campaign_parts(campaign) if parts is None else parts
    _check_grid(campaign, store, replan)
    if campaign.priority is not None:
        check_priority(campaign.priority, [*campaign.aoi.properties, *campaign.grid.feature_attributes()])
    if source is None:
        source = input_source(campaign)
    tally = _Tally()
    with store.planning() as planning:
        for part in parts:
            tally.tiles, tally.km2 = tally.tiles + len(part), tally.km2 + part.area_km2
            if tally.conflict is None:
                store.put_tiles(tile_records(part))
            specs = job_specs(campaign, part, source)
            while batch := list(itertools.islice(specs, PART_JOBS)):
                diff = _compare(batch, planning.note_and_find([s.job_id for s in batch]), tally, check)
                tally.changed += len(diff.changed)
                if diff.changed and not replan and tally.conflict is None:
                    tally.conflict = diff.changed[0].job_id
                if tally.conflict is None:  # else counted to the end, written never: rolled back below
                    _write(store, planning, diff, tally)
        if tally.conflict is not None:
            raise PlanConflict(
                f"store {store.path}: {tally.changed:,} jobs already planned would change "
                f"(e.g. {tally.conflict}): the config changed since they were planned",
                hint="run `ogc-upscaler plan CONFIG --replan` to give the jobs that are not running the new config, "
                "or use a new store",
            )
        stale = 0 if partial else planning.unnamed()
        removed = planning.drop_unnamed() if replan and stale else 0
        _record(campaign, store, whole=not partial)
    return PlanReport(
        tiles=tally.tiles,
        windows=len(campaign.windows),
        parameter_sets=max(1, len(campaign.parameter_sets)),
        jobs=tally.jobs,
        added=tally.added,
        unchanged=tally.unchanged,
        replanned=tally.replanned,
        removed=removed,
        stale=stale - removed,
        tile_area_km2=tally.km2,
        aoi_area_km2=campaign.aoi.area_km2,
        no_inputs=tally.no_inputs,
        left=tuple(sorted(tally.left.items())),
        grown=tally.grew,
    )


#: The most jobs compared and written at once: a part's tiles × windows × parameter sets, in batches.
PART_JOBS = 50_000


@dataclass
class _Tally:
    """What :func:`plan` counts as it goes, part by part."""

    tiles: int = 0
    km2: float = 0.0
    jobs: int = 0
    no_inputs: int = 0
    added: int = 0
    unchanged: int = 0
    changed: int = 0
    replanned: int = 0
    grew: int = 0
    left: Counter[str] = field(default_factory=Counter)
    conflict: str | None = None  # a job that would change, when replan was not asked for


@dataclass
class _Diff:
    """A batch of the plan against the store: what is new, grew inputs, changed, or only moved in order."""

    new: list[JobSpec] = field(default_factory=list)
    grown: list[JobSpec] = field(default_factory=list)
    changed: list[JobSpec] = field(default_factory=list)
    reranked: list[tuple[str, float]] = field(default_factory=list)


def _compare(
    batch: list[JobSpec], known: dict[str, Planned], tally: _Tally, check: Callable[[JobSpec], None] | None
) -> _Diff:
    """Check each job that would run, and sort the batch by what the store holds of it."""
    diff = _Diff()
    for spec in batch:
        tally.jobs += 1
        tally.no_inputs += spec.state is State.NO_INPUTS
        if check is not None and spec.state is State.PLANNED:
            check(spec)
        old = known.get(spec.job_id)
        if old is None:
            diff.new.append(spec)
        elif old.spec_hash == spec.spec_hash:
            tally.unchanged += 1
            if old.rank != spec.rank:
                diff.reranked.append((spec.job_id, spec.rank))
        elif old.state is State.NO_INPUTS:
            diff.grown.append(spec)
        else:
            diff.changed.append(spec)
            if old.state not in REPLANNABLE:
                tally.left[old.state.value] += 1
    return diff


def _write(store: JobStore, planning: Planning, diff: _Diff, tally: _Tally) -> None:
    """Write a batch: new jobs, jobs whose inputs grew, re-planned and re-ranked ones."""
    tally.added += store.insert(diff.new)
    tally.grew += store.replace_specs(diff.grown, only=(State.NO_INPUTS,)) if diff.grown else 0
    tally.replanned += store.replace_specs(diff.changed, only=REPLANNABLE) if diff.changed else 0
    planning.rerank(diff.reranked, only=REPLANNABLE)


def render(template: Any, context: dict[str, Any]) -> Any:
    """Render every string in a JSON-like template with the job's fields."""
    if isinstance(template, str):
        return _render_string(template, context)
    if isinstance(template, dict):
        return {k: render(v, context) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, context) for v in template]
    return template


def _render_string(text: str, context: dict[str, Any]) -> Any:
    try:
        whole = _ONE_FIELD.match(text)
        if whole:
            value, _ = string.Formatter().get_field(whole[1], (), context)
            return _jsonable(value)
        return text.format_map(context)
    except (KeyError, AttributeError, IndexError, ValueError) as err:
        raise InvalidConfig(
            f"process.inputs: template {text!r} cannot be rendered ({type(err).__name__}: {err})",
            hint=f"the fields are: {TEMPLATE_FIELDS}; write {{{{ and }}}} for literal braces",
        ) from None


def _jsonable(value: Any) -> Any:
    if isinstance(value, shapely.Geometry):
        return json.loads(shapely.to_geojson(value))
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str | int | float | bool | dict) or value is None:
        return value
    return str(value)


def _window_view(window: Window) -> SimpleNamespace:
    start, end = window.interval.split("/")
    return SimpleNamespace(start=start, end=end, interval=window.interval, key=window.key)


def _check_grid(campaign: Campaign, store: JobStore, replan: bool) -> None:
    before = store.get_meta("grid")
    now = campaign.grid.describe()
    if before is not None and before != now and not replan:
        changed = sorted(k for k in {*before, *now} if before.get(k) != now.get(k))
        raise PlanConflict(
            f"store {store.path}: planned on grid {before.get('name')!r}; the config now gives another grid "
            f"(changed: {', '.join(changed)})",
            hint="use a new store for the new grid, or `ogc-upscaler plan CONFIG --replan` to replace the jobs "
            "not yet run",
        )


def fingerprint(campaign: Campaign) -> str:
    """A hash of everything that shapes the jobs: same fingerprint, same plan (inputs searched again aside)."""
    parts = {
        "grid": campaign.grid.describe(),
        "aoi": campaign.aoi.to_geojson(),
        "windows": [w.interval for w in campaign.windows],
        "parameters": [[p.name, p.values] for p in campaign.parameter_sets],
        "process": [campaign.process.application, campaign.process.inputs],
        "priority": campaign.priority,
        "inputs": None if campaign.inputs is None else [campaign.inputs.stac, list(campaign.inputs.collections)],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def is_planned(campaign: Campaign, store: JobStore) -> bool:
    """Whether the store holds the plan of exactly this campaign."""
    return store.get_meta("fingerprint") == fingerprint(campaign)


def _record(campaign: Campaign, store: JobStore, *, whole: bool) -> None:
    if whole:  # a sample's plan leaves the mark of a whole plan as it was: it only adds jobs of that plan
        store.set_meta("fingerprint", fingerprint(campaign))
    store.set_meta("campaign", campaign.name)
    store.set_meta("grid", campaign.grid.describe())
    store.set_meta("aoi", campaign.aoi.to_geojson())
    store.set_meta("windows", [w.interval for w in campaign.windows])
