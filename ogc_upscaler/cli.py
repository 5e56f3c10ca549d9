"""The ``ogc-upscaler`` command: parse, call the library, print. Nothing else lives here.

Exit codes: 0 ok, 2 bad input or config, 1 anything else; ``run`` also 3 (it finished, but some
jobs failed, are in doubt or were cancelled) and 75 (stopped by a signal: run again to resume).
Errors go to stderr as one line plus a hint.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ogc_upscaler.errors import InvalidInput, UpscalerError
from ogc_upscaler.export import FORMATS
from ogc_upscaler.grid.syntax import GRID_HELP
from ogc_upscaler.states import State

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from ogc_upscaler.campaign import Campaign
    from ogc_upscaler.grid import TileSet
    from ogc_upscaler.manager import Progress
    from ogc_upscaler.run import RunResult, SampleRun

T = TypeVar("T")
config_argument = click.argument("config", type=click.Path(path_type=Path))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ogc-upscaler")
def cli() -> None:
    """Run an Earth-observation algorithm over a country, a continent or the globe, tile by tile."""


@cli.command()
@click.option(
    "--aoi",
    required=True,
    help="Vector file (GeoJSON, GeoPackage, Shapefile, FlatGeobuf, GeoParquet), bbox W,S,E,N or WKT.",
)
@click.option("--layer", default=None, help="The file's layer holding the area (when it has several).")
@click.option("--where", default=None, help="""SQL attribute filter, e.g. "iso_a3 IN ('FRA','DEU')".""")
@click.option("--grid", "grid_spec", required=True, help=GRID_HELP)
@click.option("--resolution", type=float, default=None, help="Pixel size in metres [default: 10].")
@click.option("--buffer", type=click.IntRange(min=0), default=0, show_default=True, help="Buffer in pixels.")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write the tiles as GeoJSON.")
def grid(
    aoi: str,
    layer: str | None,
    where: str | None,
    grid_spec: str,
    resolution: float | None,
    buffer: int,
    output: Path | None,
) -> None:
    """Tile an AOI on a grid: print the count and area, optionally write the tiles. The grid is made a part
    at a time (a UTM zone at a time) and each part written before the next is made, so a whole globe takes
    the memory of one zone; a progress bar shows the area done."""
    from ogc_upscaler.aoi import load_aoi
    from ogc_upscaler.grid import grid_from_spec
    from ogc_upscaler.grid.tiles import write_geojson
    from ogc_upscaler.progress import AreaBar

    area = load_aoi(aoi, layer=layer, where=where)
    _warn(area.warnings)
    chosen = grid_from_spec(grid_spec, resolution=resolution, buffer_px=buffer)
    with AreaBar(f"grid {grid_spec}", area.area_km2) as bar:
        parts = bar.counted(chosen.chunks(area))
        if output is None:
            for _ in parts:
                pass
        else:
            write_geojson(output, parts)
    click.echo(f"{bar.tiles:,} tiles of {grid_spec}, {bar.km2:,.0f} km² covering an AOI of {area.area_km2:,.0f} km²")
    if output is not None:
        click.echo(f"tiles: {output}")


@cli.command("check")
@config_argument
@click.option("--sample", "sample", type=click.IntRange(min=1), default=20, show_default=True, help="Tiles to check.")
def check_command(config: Path, sample: int) -> None:
    """Say what the campaign would do, before it does anything: its tiles and jobs; a sample of tiles spread
    over the AOI with every template rendered and each job checked against the package (or the process
    description); the input collections (which must exist), where the AOI and windows lie outside them and
    how many jobs would find no items; parameter sets that only multiply jobs. Writes nothing."""
    from ogc_upscaler.config import load_campaign
    from ogc_upscaler.run import make_backend, spec_check
    from ogc_upscaler.survey import survey

    campaign = load_campaign(config)
    _warn(campaign.aoi.warnings)
    backend = make_backend(campaign)
    try:
        found = survey(campaign, spec_check(backend), sample)
    finally:
        backend.close()
    click.echo(found.summary())


@cli.command("plan")
@config_argument
@click.option("--map", "map_path", type=click.Path(path_type=Path), help="Draw the AOI and the tiles to a PNG.")
@click.option("--replan", is_flag=True, help="Replace jobs whose spec changed and drop planned jobs no longer wanted.")
def plan_command(config: Path, map_path: Path | None, replan: bool) -> None:
    """Write the whole job plan to the store before anything runs, and print a summary. The checks of `check`
    run first (on a sample; a missing input collection stops here, the rest are warnings), and every job's
    inputs are checked against the package (or the process description), as `run` does, so a misspelled
    package or input is found before the store is written. The plan is made a part at a time (a
    UTM zone at a time) in one transaction, so a whole globe takes the memory of one zone; a progress bar
    shows the area planned."""
    from ogc_upscaler import maps
    from ogc_upscaler.config import load_campaign
    from ogc_upscaler.plan import campaign_parts, input_source, plan
    from ogc_upscaler.progress import AreaBar
    from ogc_upscaler.run import make_backend, spec_check
    from ogc_upscaler.store import JobStore
    from ogc_upscaler.survey import survey

    campaign = load_campaign(config)
    _warn(campaign.aoi.warnings)
    footprints: list[Any] = []
    ids: list[str] = []

    def kept(parts: Iterable[TileSet]) -> Iterator[TileSet]:
        for part in parts:
            yield part
            footprints.extend(part.footprints.tolist())  # what the map draws, not the parts
            ids.extend(part.ids.tolist())

    backend = make_backend(campaign)
    source = input_source(campaign)  # opened once, for the checks and the plan
    try:
        checked = survey(campaign, spec_check(backend), source=source)
        _warn(checked.warnings)
        with AreaBar(f"plan {campaign.name}", campaign.aoi.area_km2) as bar, JobStore.open(campaign.store) as store:
            parts = bar.counted(campaign_parts(campaign))
            report = plan(
                campaign,
                store,
                replan=replan,
                parts=kept(parts) if map_path is not None else parts,
                check=spec_check(backend),
                source=source,
            )
    finally:
        backend.close()
    click.echo(f"campaign {campaign.name} on grid {campaign.grid.name}")
    click.echo(report.summary())
    click.echo(f"store: {campaign.store}")
    if map_path is not None:
        maps.draw(
            map_path,
            campaign.aoi.geometry,
            footprints,
            title=f"{campaign.name}: {report.tiles:,} tiles of {campaign.grid.name}",
            labels=ids,
        )
        click.echo(f"map: {map_path}")


@cli.command()
@config_argument
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@click.option("--map", "map_path", type=click.Path(path_type=Path), help="Draw the tiles coloured by state.")
@click.option(
    "--jobs",
    "job_state",
    type=click.Choice([s.value for s in State]),
    help="Also list the jobs in this state, each with its attempts, log and error.",
)
def status(config: Path, as_json: bool, map_path: Path | None, job_state: str | None) -> None:
    """Jobs per state and backend; with --jobs STATE, those jobs and their logs."""
    from ogc_upscaler import maps
    from ogc_upscaler.config import load_campaign
    from ogc_upscaler.status import Status
    from ogc_upscaler.store import JobStore

    campaign = load_campaign(config)
    with JobStore.read(campaign.store) as store:
        current = Status.of(store)
        jobs = Status.records(store, State(job_state)) if job_state else []
        if map_path is not None:
            footprints, states = current.tile_states(store)
            maps.draw(
                map_path, campaign.aoi.geometry, footprints, states, title=f"{campaign.name}: {current.total:,} jobs"
            )
    if as_json:
        click.echo(json.dumps({**current.as_dict(), **({"jobs": jobs} if job_state else {})}, indent=2, default=str))
    else:
        click.echo(current.table())
        for job in jobs:
            error = f"  {job['error'][:160]}" if job.get("error") else ""
            click.echo(f"{job['job_id']}  {job['state']}  attempts {job['attempts']}  log {job['log_path']}{error}")
    if map_path is not None and not as_json:
        click.echo(f"map: {map_path}")


@cli.command()
@config_argument
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (a login node's, say).")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="0 takes a free one.")
def watch(config: Path, host: str, port: int) -> None:
    """Serve a live page of the campaign: its tiles on a map by state, failures by cause, and actions.

    The page reads the store alongside the manager; retry, cancel and pause are requests the manager
    applies (while none runs, they wait for the next `run`).
    """
    from ogc_upscaler.config import load_campaign
    from ogc_upscaler.watch.serve import watch_server

    campaign = load_campaign(config)
    server, url = watch_server(campaign.store, host, port)
    click.echo(f"watching {campaign.name} at {url} (Ctrl-C stops)", err=True)
    click.echo(url)
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@cli.command("export")
@config_argument
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), required=True, help=f"Output file: {', '.join(FORMATS)}."
)
@click.option(
    "--stac-geoparquet", "stac_geoparquet", is_flag=True, help="The collected items as stac-geoparquet (.parquet)."
)
def export_command(config: Path, output: Path, stac_geoparquet: bool) -> None:
    """Export the jobs with their footprints to GeoJSON, CSV or GeoParquet; with --stac-geoparquet, the
    collection's items as stac-geoparquet, every href absolute."""
    from ogc_upscaler.config import load_campaign
    from ogc_upscaler.export import export
    from ogc_upscaler.store import JobStore

    campaign = load_campaign(config)
    if stac_geoparquet:
        from ogc_upscaler.geoparquet_items import write_stac_geoparquet

        if output.suffix.lower() != ".parquet":
            raise InvalidInput(f"export {output}: stac-geoparquet is written to a .parquet file")
        href = campaign.upload.href if campaign.upload is not None else None
        click.echo(f"{write_stac_geoparquet(campaign.output, output, href):,} items: {output}")
        return
    with JobStore.read(campaign.store) as store:
        n = export(store, output)
    click.echo(f"{n:,} jobs: {output}")


@cli.command()
@config_argument
@click.option(
    "--sample",
    type=click.IntRange(min=1),
    default=None,
    help="Run only N tiles spread over the AOI, then estimate the whole campaign from them.",
)
def run(config: Path, sample: int | None) -> None:
    """Plan what is new, run every job, collect the results into a STAC catalog; resume after any stop.
    With --sample N, run N tiles spread over the AOI (in every window) before the campaign is planned, and
    print their runtime and output size per tile and per 100 × 100 km and the whole campaign's duration at
    the configured parallelism, with a range; their jobs count as done for the real run."""
    from ogc_upscaler.config import load_campaign

    campaign = load_campaign(config)
    _warn(campaign.aoi.warnings)
    if sample is None:
        result = _run_with_progress(campaign)
    else:
        sampled = _sample_with_progress(campaign, sample)
        result = sampled.result
        click.echo(sampled.estimate.summary())
    _print_result(config, result)
    sys.exit(result.exit_code)


@cli.command()
@config_argument
@click.option("--failed", "only_failed", is_flag=True, help="Only failed jobs (not cancelled ones).")
@click.option(
    "--in-doubt",
    "in_doubt",
    is_flag=True,
    help="Only jobs in doubt (their submission may have reached the backend): send them again, accepting "
    "that some may then run twice.",
)
def retry(config: Path, only_failed: bool, in_doubt: bool) -> None:
    """Put failed (and cancelled) jobs back to planned, with fresh attempts; `run` runs them."""
    from ogc_upscaler.config import load_campaign
    from ogc_upscaler.store import JobStore

    campaign = load_campaign(config)
    with JobStore.open(campaign.store) as store:
        if in_doubt:
            n = store.resubmit_in_doubt()
            click.echo(f"{n:,} jobs in doubt will be sent again; `ogc-upscaler run {config}` sends them")
            return
        n = store.requeue({State.FAILED} if only_failed else {State.FAILED, State.CANCELLED})
    click.echo(f"{n:,} jobs back to planned; `ogc-upscaler run {config}` runs them")


@cli.command()
@config_argument
def cancel(config: Path) -> None:
    """Stop a running manager, cancel the jobs on the backend, and mark every unfinished job cancelled."""
    from ogc_upscaler.cancel import cancel_jobs, stop_running_manager
    from ogc_upscaler.config import load_campaign
    from ogc_upscaler.store import JobStore

    campaign = load_campaign(config)
    stopped = stop_running_manager(campaign.store)
    if stopped:
        click.echo(f"stopped the running manager (pid {stopped})")
    with JobStore.open(campaign.store) as store:
        n = cancel_jobs(campaign, store)
    click.echo(f"{n:,} jobs cancelled")


@cli.command("estimate")
@config_argument
def estimate_command(config: Path) -> None:
    """Runtime per tile and per km² from finished jobs, and the time left at the configured parallelism."""
    from ogc_upscaler.config import load_campaign
    from ogc_upscaler.estimate import estimate
    from ogc_upscaler.store import JobStore

    campaign = load_campaign(config)
    with JobStore.read(campaign.store) as store:
        click.echo(estimate(store, campaign.parallel).summary())


@cli.command()
@config_argument
@click.option("--publish", is_flag=True, help="Publish the collection and every item to the STAC API again.")
def catalog(config: Path, publish: bool) -> None:
    """Write the campaign's STAC Collection again from the store, and upload it with every item to the
    campaign's bucket (output: s3://…), skipping what is there; with --publish, to its STAC API too."""
    from ogc_upscaler.config import load_campaign
    from ogc_upscaler.run import rebuild_catalog

    campaign = load_campaign(config)
    if publish and campaign.publish is None:
        raise InvalidInput(f"config {config}: --publish needs a publish: section", hint="publish: {stac_api: URL}")
    click.echo(f"catalog: {rebuild_catalog(campaign, publish=publish)}")
    if campaign.upload is not None:
        click.echo(f"uploaded to: {campaign.upload.href('collection.json')}")
    if publish and campaign.publish is not None:
        click.echo(f"published to: {campaign.publish.stac_api.rstrip('/')}/collections/{campaign.publish.collection}")


@cli.command("demo-data")
@click.argument("directory", type=click.Path(path_type=Path))
def demo_data(directory: Path) -> None:
    """Write the synthetic Sentinel-2-like demo archive (COGs and a static STAC catalog) into DIRECTORY."""
    from ogc_upscaler.demo import write_archive

    click.echo(f"archive: {write_archive(directory)}")


@cli.group()
def package() -> None:
    """Application packages (CWL)."""


@package.command("inspect")
@click.argument("path")
def package_inspect(path: str) -> None:
    """Check an application package (a CWL file, FILE#workflow, or a folder holding one CWL file) and list
    its inputs and outputs with their types and defaults, and what its tools need to run."""
    from ogc_upscaler.cwl import load_package

    pkg = load_package(path)
    click.echo(f"{pkg.entry}  (version {pkg.version or 'unknown'})")
    if pkg.label:
        click.echo(f"  {pkg.label}")
    for title, parameters in (("inputs", pkg.inputs), ("outputs", pkg.outputs)):
        click.echo(f"{title}:")
        for p in parameters:
            default = f"  (default {json.dumps(p.default)})" if p.has_default else ""
            click.echo(f"  {p.id:<14} {p.type.text:<12} {p.label}{default}")
    click.echo("tools:")
    for tool in pkg.tools:
        image = f"  image {tool.image}{' (required)' if tool.image_required else ''}" if tool.image else ""
        needs = f"{tool.resources.cores:g} cores, {tool.resources.ram_mib:g} MiB"
        if tool.resources.expressions.fields:
            needs += " (per job: " + ", ".join(f"{k} {v}" for k, v in tool.resources.expressions.fields) + ")"
        click.echo(f"  {tool.id:<14} {tool.command or '-':<12} {needs}{image}")


@package.command("validate")
@click.argument("path")
@click.option("--notes", is_flag=True, help="Also list the notes (optional metadata and the like).")
def package_validate(path: str, notes: bool) -> None:
    """Check a package against the OGC EO Application Package best practice, as a platform does before it
    deploys one (ogc-ap-validator's checks, offline); exit 1 if a platform would refuse it."""
    from ogc_upscaler.cwl import load_package
    from ogc_upscaler.cwl.validate import best_practice

    pkg = load_package(path)
    findings = [f for f in best_practice(pkg) if notes or f.level != "note"]
    for finding in findings:
        click.echo(str(finding))
    errors = sum(f.level == "error" for f in findings)
    click.echo(f"{pkg.path.name}#{pkg.workflow}: {errors} error(s), {sum(f.level == 'hint' for f in findings)} hint(s)")
    if errors:
        raise SystemExit(1)


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path), default=Path("demo"))
def demo(directory: Path) -> None:
    """Make the demo data and config in DIRECTORY and run the whole campaign end to end."""
    from ogc_upscaler import maps
    from ogc_upscaler.config import load_campaign
    from ogc_upscaler.demo import write_archive, write_campaign

    config = write_campaign(directory)
    if not (directory / "archive" / "catalog.json").exists():
        click.echo("writing the synthetic archive …")
        write_archive(directory / "archive")
    click.echo(f"demo config: {config}")
    campaign = load_campaign(config)
    result = _run_with_progress(campaign)
    _print_result(config, result)
    picture = directory / "ndvi.png"
    last = campaign.windows[-1]
    cogs = sorted(campaign.output.glob(f"items/*_{last.key}/*.tif"))
    if cogs:
        maps.draw_mosaic(picture, cogs, title=f"demo: NDVI {last.interval}", aoi=campaign.aoi.geometry)
        click.echo(f"picture: {picture}")
    sys.exit(result.exit_code)


@cli.command()
@click.option(
    "--state",
    type=click.Path(path_type=Path),
    default=Path("server-state"),
    show_default=True,
    help="Folder for the job database, job folders and the generated pygeoapi config.",
)
@click.option(
    "--packages",
    "package_paths",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A CWL package or a folder of them (repeatable) [default: ./app_packages].",
)
@click.option(
    "--data-root",
    "data_roots",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A local folder that execute requests may read (repeatable); else only URLs.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=5000, show_default=True)
@click.option("--url", default=None, help="The public URL, if not http://HOST:PORT (behind a proxy).")
@click.option("--container", type=click.Choice(["none", "docker", "podman"]), default="none", show_default=True)
@click.option(
    "--parallel",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Tile jobs an upscale job runs at once.",
)
@click.option(
    "--allow-internal-urls",
    is_flag=True,
    help="Let requests name URLs of loopback, private and link-local hosts (refused by default).",
)
@click.option(
    "--max-tiles",
    type=click.IntRange(min=1),
    default=20_000,  # campaign_size.DEFAULT_MAX_TILES (a test keeps them equal)
    show_default=True,
    help="The most tiles one upscale campaign may cover; larger requests are refused with 400.",
)
@click.option(
    "--max-restarts",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="How often a job whose worker vanished is started again before it fails.",
)
@click.option(
    "--watch",
    "watched",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A campaign config (repeatable) whose watch page to serve too, at /watch/campaigns/NAME/.",
)
@click.option("--prepare-only", is_flag=True, help="Write the config and print the gunicorn command; do not serve.")
def serve(
    state: Path,
    package_paths: tuple[Path, ...],
    data_roots: tuple[Path, ...],
    host: str,
    port: int,
    url: str | None,
    container: str,
    parallel: int,
    allow_internal_urls: bool,
    max_tiles: int,
    max_restarts: int,
    watched: tuple[Path, ...],
    prepare_only: bool,
) -> None:
    """Serve the application packages and `upscale` as an OGC API – Processes endpoint (pygeoapi)."""
    try:
        from ogc_upscaler.server import serve as server
        from ogc_upscaler.server.settings import ServerSettings, prepare
    except ImportError as err:
        raise click.ClickException(
            f"{err}; the endpoint needs the server extra: pip install 'ogc-upscaler[server]'"
        ) from None
    settings = ServerSettings(
        state=state,
        packages=package_paths or (Path("app_packages"),),
        data_roots=data_roots,
        host=host,
        port=port,
        url=url,
        container=container,
        parallel=parallel,
        allow_internal_urls=allow_internal_urls,
        max_tiles=max_tiles,
        max_restarts=max_restarts,
        watched=watched,
    )
    if prepare_only:
        click.echo(server.gunicorn_command(settings, prepare(settings)))
        return
    click.echo(f"serving {settings.public_url} (development server; see the README for gunicorn)", err=True)
    server.serve(settings)


def _run_with_progress(campaign: Campaign) -> RunResult:
    from ogc_upscaler.run import run_campaign

    return _with_progress(campaign, lambda stop, bar: run_campaign(campaign, stop=stop, on_progress=bar))


def _sample_with_progress(campaign: Campaign, sample: int) -> SampleRun:
    from ogc_upscaler.run import run_sample

    return _with_progress(campaign, lambda stop, bar: run_sample(campaign, sample, stop=stop, on_progress=bar))


def _with_progress(campaign: Campaign, go: Callable[[threading.Event, Callable[[Progress], None]], T]) -> T:
    """``go(stop, on_progress)`` under a progress bar, SIGINT and SIGTERM setting ``stop`` (twice: abort)."""
    from ogc_upscaler.progress import ProgressBar

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        click.echo(
            f"\n{signal.Signals(signum).name}: stopping; jobs already running go on and the next run "
            "re-attaches them (again to abort at once)",
            err=True,
        )

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with ProgressBar(campaign.name) as bar:
            return go(stop, bar.update)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _print_result(config: Path, result: RunResult) -> None:
    counts = result.progress.counts
    shown = ", ".join(
        f"{counts[s]:,} {s}"
        for s in (
            "collected",
            "failed",
            "in_doubt",
            "cancelled",
            "no_inputs",
            "planned",
            "waiting",
            "submitted",
            "running",
        )
        if counts[s]
    )
    if result.plan is not None:
        click.echo(result.plan.summary())
    click.echo(f"{'stopped' if result.stopped else 'done'}: {shown}")
    click.echo(f"catalog: {result.catalog}")
    click.echo(f"log: {result.log}")
    if counts["failed"]:
        click.echo(
            f"{counts['failed']:,} jobs failed: `ogc-upscaler status {config} --jobs failed` "
            "shows why; `retry --failed` runs them again",
            err=True,
        )
    if counts["in_doubt"]:
        click.echo(
            f"{counts['in_doubt']:,} jobs are in doubt (their submission may have reached the backend): "
            f"`ogc-upscaler status {config} --jobs in_doubt` lists them; `retry --in-doubt` sends them again",
            err=True,
        )


def _warn(warnings: tuple[str, ...]) -> None:
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


def main(argv: list[str] | None = None) -> None:
    """Run the command line; map errors to exit codes and one-line messages."""
    try:
        cli.main(args=argv, prog_name="ogc-upscaler", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except UpscalerError as err:
        click.echo(f"error: {err.message}", err=True)
        if err.hint:
            click.echo(f"hint: {err.hint}", err=True)
        sys.exit(err.exit_code if isinstance(err, InvalidInput) else 1)
    except Exception as err:
        if os.environ.get("OGC_UPSCALER_DEBUG"):
            traceback.print_exc()
        click.echo(f"error: unexpected {type(err).__name__}: {err}", err=True)
        click.echo("hint: this is a bug; rerun with OGC_UPSCALER_DEBUG=1 for the traceback and report it", err=True)
        sys.exit(1)
