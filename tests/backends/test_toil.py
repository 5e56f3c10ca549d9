"""The Toil backend: the demo campaign in batches through Toil (single_machine and a real SLURM), a failing
tile retried then failed with its log, a killed leader restarted on its job store, and the options our code
builds for SLURM and Kubernetes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pystac
import pytest
import yaml
from click.testing import CliRunner

from ogc_upscaler.backends.base import RemoteState
from ogc_upscaler.backends.runner import descendants
from ogc_upscaler.backends.tile_run import Started
from ogc_upscaler.cli import cli
from ogc_upscaler.config import load_campaign
from ogc_upscaler.errors import InvalidPackage
from ogc_upscaler.run import BackgroundRun, make_backend, run_campaign
from ogc_upscaler.store import JobStore

from ..conftest import demo_config, wait_for
from .test_cwltool import (
    assert_ran_in_image,
    containers_started_since,
    flaky_config,
    flaky_in_image,
    rows_by_tile,
    running_containers,
)

pytestmark = pytest.mark.slow


def toil_backend(batch_system: str, **toil) -> dict:
    return {"type": "toil", "parallel": 6, "toil": {"batch_system": batch_system, "batch_size": 3, **toil}}


def check_collected(campaign) -> list[dict]:
    with JobStore.read(campaign.store) as store:
        rows = list(j.columns() for j in store.jobs(with_tile=True))
    assert len(rows) == 13 and all(r["state"] == "collected" for r in rows), [(r["state"], r["error"]) for r in rows]
    collection = pystac.Collection.from_file(str(campaign.output / "collection.json"))
    assert len(list(collection.get_items())) == 13
    return rows


def test_the_demo_runs_through_toil_in_batches(tmp_path, demo_archive) -> None:
    campaign = load_campaign(demo_config(tmp_path, demo_archive, backend=toil_backend("single_machine")))
    run_campaign(campaign)
    rows = check_collected(campaign)
    batches = sorted((campaign.backend.toil.shared / "batches").iterdir())
    assert 5 <= len(batches) <= 7, "13 tiles in batches of up to 3, not one leader per tile"
    for batch in batches:
        assert len(json.loads((batch / "batch.json").read_text())["tiles"]) <= 3
        wait_for(lambda b=batch: (b / "exit_code").exists(), 60)  # the last leader may still be tidying up
        assert (batch / "exit_code").read_text().strip() == "0"
    assert all(Path(r["log_path"]).is_file() for r in rows), "each tile's own log is reachable"


def test_tiles_travel_through_the_job_store_to_nodes_without_the_shared_path(
    tmp_path, demo_archive, offline_stac_validator
) -> None:
    backend = toil_backend("single_machine", staging="jobstore", batch_size=5)
    campaign = load_campaign(demo_config(tmp_path, demo_archive, backend=backend))
    run_campaign(campaign)
    rows = check_collected(campaign)
    for row in rows:
        folder = Path(row["remote_id"])
        ran_in = Path((folder / "ran_in").read_text().strip())
        assert (folder / "staged").exists() and not ran_in.is_relative_to(folder), "it ran in the node's scratch"
        # Toil removes the node's scratch folder once the job ended: the outcome came through the job store
        wait_for(lambda r=ran_in: not r.exists(), 60)
        assert str(ran_in) not in (folder / "stdout").read_text()
        assert "ndvi-tile" in Path(row["log_path"]).read_text(), "the tile's log came back with its outcome"
    collection = pystac.Collection.from_file(str(campaign.output / "collection.json"))
    assert collection.validate() and all(item.validate() for item in collection.get_items())


def _end_slurm_time_limits_soon(campaign) -> None:
    """Set the time limit of every running tile's SLURM job to what it ran so far, plus a few seconds."""
    with JobStore.read(campaign.store) as store:
        folders = [Path(j.remote_id) for j in store.jobs() if j.remote_id]
    for folder in folders:
        started = Started.read(folder)
        if started is None or not started.slurm_id:
            continue
        shown = subprocess.run(["squeue", "-h", "-j", started.slurm_id, "-o", "%M"], capture_output=True, text=True)
        elapsed = _seconds(shown.stdout.strip() or "0:00") + 20
        limit = f"{elapsed // 60}:{elapsed % 60:02d}"
        subprocess.run(["scontrol", "update", f"JobId={started.slurm_id}", f"TimeLimit={limit}"], check=True)


def _seconds(clock: str) -> int:
    """Seconds of squeue's elapsed time ([D-]HH:MM:SS or MM:SS)."""
    days, _, rest = clock.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0)
    return int(days or 0) * 86400 + parts[0] * 3600 + parts[1] * 60 + parts[2]


def started_on_slurm(rows: list[dict]) -> set[str]:
    """The SLURM job ids the tiles ran under (from each tile's ``started`` file)."""
    ids = set()
    for row in rows:
        started = Started.read(Path(row["remote_id"]))
        assert started and started.slurm_id, f"{row['job_id']} did not run under SLURM: {started}"
        ids.add(started.slurm_id)
    return ids


@pytest.mark.usefixtures("slurm")
def test_the_demo_runs_through_toil_on_slurm(tmp_path, demo_archive, offline_stac_validator) -> None:
    campaign = load_campaign(demo_config(tmp_path, demo_archive, backend=toil_backend("slurm", batch_size=5)))
    run_campaign(campaign)
    rows = check_collected(campaign)
    assert len(started_on_slurm(rows)) == 13, "one SLURM job per tile"
    collection = pystac.Collection.from_file(str(campaign.output / "collection.json"))
    assert collection.validate() and all(item.validate() for item in collection.get_items())


@pytest.mark.usefixtures("slurm", "podman")
@pytest.mark.parametrize("staging", ["shared", "jobstore"])
def test_the_demo_runs_in_podman_containers_through_toil_on_slurm(
    tmp_path, demo_archive, offline_stac_validator, staging
) -> None:
    backend = {**toil_backend("slurm", batch_size=5, staging=staging), "container": "podman"}
    campaign = load_campaign(demo_config(tmp_path, demo_archive, backend=backend))
    since = time.time()
    run_campaign(campaign)
    rows = check_collected(campaign)
    assert len(started_on_slurm(rows)) == 13, "one SLURM job per tile"
    for row in rows:
        assert_ran_in_image(Path(row["log_path"]))
    started = containers_started_since(since)
    assert len(started) == 13 and not running_containers() & set(started), "one container per tile, none left"
    collection = pystac.Collection.from_file(str(campaign.output / "collection.json"))
    assert collection.validate() and all(item.validate() for item in collection.get_items())


@pytest.mark.usefixtures("slurm", "podman")
@pytest.mark.parametrize(
    ("stopped_by", "limits", "staging"),
    [
        ("the manager (scancel: SIGTERM)", {"retries": {"attempts": 1, "time_limit": 45}, "slurm": {}}, "shared"),
        ("the manager, staged tile", {"retries": {"attempts": 1, "time_limit": 45}, "slurm": {}}, "jobstore"),
        (
            "SLURM's time limit (SIGUSR2)",  # shortened once the container runs: a busy machine starts it slowly
            {"retries": {"attempts": 1, "time_limit": 900}, "slurm": {"time": "10"}},
            "shared",
        ),
    ],
)
def test_a_tile_stopped_on_slurm_leaves_no_container_running(tmp_path, stopped_by, limits, staging) -> None:
    config = flaky_config(
        tmp_path,
        package=flaky_in_image(tmp_path / "package"),
        seconds=300,
        retries=limits["retries"],
        aoi="11.99,47.90,12.0,47.91",
        backend={**toil_backend("slurm", slurm=limits["slurm"], staging=staging), "container": "podman"},
    )
    campaign = load_campaign(config)
    since = time.time()
    if "SIGUSR2" in stopped_by:
        run = BackgroundRun(campaign).start()
        wait_for(lambda: containers_started_since(since), 600)
        _end_slurm_time_limits_soon(campaign)
        run.wait(timeout=900)
    else:
        run_campaign(campaign)
    jobs = rows_by_tile(campaign)
    assert jobs and all(r["state"] == "failed" for r in jobs.values()), [r["error"] for r in jobs.values()]
    if staging == "shared":
        assert len(started_on_slurm(list(jobs.values()))) == len(jobs)
    if "SIGUSR2" in stopped_by:
        for row in jobs.values():
            assert "before the SLURM job's time limit" in Path(row["log_path"]).read_text()
    started = containers_started_since(since)
    assert len(started) == len(jobs), "each tile's tool ran in its container on the node until it was stopped"
    wait_for(lambda: not running_containers() & set(started), 30)  # killed by the tile's SLURM job as it ended


@pytest.mark.usefixtures("slurm")
def test_a_failing_tile_on_slurm_is_retried_then_failed_with_its_log(tmp_path) -> None:
    broken = "UTM20KM-32N-E720N5300"
    config = flaky_config(
        tmp_path,
        broken=broken,
        backend=toil_backend("slurm"),
        retries={"attempts": 2, "backoff": 0.2, "time_limit": "PT5M"},
    )
    campaign = load_campaign(config)
    run_campaign(campaign)
    with JobStore.read(campaign.store) as store:
        rows = {r["tile_id"]: r for r in (j.columns() for j in store.jobs(with_tile=True))}
    assert rows[broken]["state"] == "failed" and rows[broken]["attempts"] == 2
    assert f"flaky: tile {broken} is broken (attempt 2)" in rows[broken]["error"]
    assert f"tile {broken} is broken" in Path(rows[broken]["log_path"]).read_text()
    others = [r for tile, r in rows.items() if tile != broken]
    assert others and all(r["state"] == "collected" and r["attempts"] == 1 for r in others), "no batch re-run"
    shown = CliRunner().invoke(cli, ["status", str(config), "--jobs", "failed"])
    assert shown.exit_code == 0 and f"log {rows[broken]['log_path']}" in shown.output, shown.output


@pytest.mark.usefixtures("slurm")
def test_the_manager_killed_mid_run_resumes_the_campaign_on_slurm(tmp_path) -> None:
    exe = str(Path(sys.executable).with_name("ogc-upscaler"))
    config = flaky_config(tmp_path, seconds=4, aoi="11.9,47.8,12.1,47.95", backend=toil_backend("slurm"))
    campaign = load_campaign(config)
    first = subprocess.Popen([exe, "run", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def some_running() -> bool:
        if not campaign.store.exists():
            return False
        with JobStore.read(campaign.store) as store:
            return any(Path(j.remote_id or "/nonexistent", "started").exists() for j in store.jobs())

    wait_for(some_running, 180)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    second = subprocess.run([exe, "run", str(config)], capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    with JobStore.read(campaign.store) as store:
        rows = list(j.columns() for j in store.jobs(with_tile=True))
    assert rows and all(r["state"] == "collected" and r["attempts"] == 1 for r in rows)
    for row in rows:
        assert (tmp_path / "state" / f"{row['tile_id']}.count").read_text() == "1", "each tile ran once"


@pytest.mark.usefixtures("slurm")
def test_a_restarted_leader_waits_for_the_tiles_its_predecessor_left_running_on_slurm(tmp_path) -> None:
    """The leader's machine goes down (runner and leader SIGKILLed) while its tiles' SLURM jobs run on."""
    exe = str(Path(sys.executable).with_name("ogc-upscaler"))
    config = flaky_config(
        tmp_path,
        seconds=10,
        aoi="11.9,47.8,12.1,47.95",  # 8 tiles: the first batch holds 6, 4 of them queued when the leader dies
        backend=toil_backend("slurm", batch_size=50),
        retries={"attempts": 2, "backoff": 0.2, "time_limit": "PT10M"},  # waiting behind the orphans takes time
    )
    campaign = load_campaign(config)
    manager = subprocess.Popen([exe, "run", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    batches = campaign.backend.toil.shared / "batches"

    def a_tile_runs() -> bool:
        return any((tmp_path / "state").glob("*.count"))

    wait_for(a_tile_runs, 180)
    (batch,) = list(batches.iterdir())
    runner_pid = int((batch / "runner.pid").read_text().split()[0])
    leader = descendants(runner_pid)
    os.kill(runner_pid, signal.SIGKILL)
    for pid in leader:  # a short-lived child (squeue, sacct) may have ended since it was listed
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _, stderr = manager.communicate(timeout=600)
    assert manager.returncode == 0, stderr
    assert (batch / "restarts").read_text() == "1", "the vanished leader was restarted on its job store"
    with JobStore.read(campaign.store) as store:
        rows = list(j.columns() for j in store.jobs(with_tile=True))
    assert len(rows) > 2, "enough tiles that some wait in SLURM's queue when the leader dies"
    assert all(r["state"] == "collected" and r["attempts"] == 1 for r in rows), [(r["state"], r["error"]) for r in rows]
    for row in rows:
        count = (tmp_path / "state" / f"{row['tile_id']}.count").read_text()
        assert count == "1", f"{row['tile_id']} ran {count} times: a tile never runs twice at once"


def test_the_toil_command_line_for_slurm_and_kubernetes(tmp_path, demo_archive) -> None:
    slurm = toil_backend(
        "slurm", slurm={"partition": "batch", "time": "02:00:00", "account": "eo", "args": ["--qos=low"]}
    )
    campaign = load_campaign(demo_config(tmp_path / "s", demo_archive, backend=slurm))
    backend = make_backend(campaign)
    batch = tmp_path / "batch"
    options = backend.toil_options(batch)
    assert options[0] == f"file:{batch / 'jobstore'}"
    pairs = dict(zip(options[1::2], options[2::2], strict=False))
    assert pairs["--batchSystem"] == "slurm" and pairs["--slurmPartition"] == "batch"
    assert pairs["--slurmTime"] == "02:00:00" and pairs["--slurmArgs"] == "--account=eo --qos=low"
    assert pairs["--retryCount"] == "0" and pairs["--caching"] == "false"
    assert "--restart" in backend.toil_options(batch, restart=True)
    env = backend.leader_environment(batch)
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent), "Toil's workers find _toil_worker"

    kubernetes = toil_backend(
        "kubernetes",
        kubernetes={"namespace": "eo", "job_store": "aws:eu-west-1:upscaler", "image": "registry.example.org/up:1",
                    "service_account": "upscaler-toil", "host_path": "/var/cache/toil"},
    )  # fmt: skip
    backend = make_backend(load_campaign(demo_config(tmp_path / "k", demo_archive, backend=kubernetes)))
    options = backend.toil_options(batch)
    assert options[0] == "aws:eu-west-1:upscaler-batch", "a job store the pods can reach, one per batch"
    pairs = dict(zip(options[1::2], options[2::2], strict=False))
    assert pairs["--batchSystem"] == "kubernetes" and pairs["--kubernetesServiceAccount"] == "upscaler-toil"
    assert pairs["--kubernetesHostPath"] == "/var/cache/toil"
    env = backend.leader_environment(batch)
    assert env["TOIL_APPLIANCE_SELF"] == "registry.example.org/up:1" and env["KUBERNETES_NAMESPACE"] == "eo"
    assert env["TOIL_KUBERNETES_OWNER"] == "ogc-batch"
    assert backend.staging == "jobstore", "pods get no shared volume from Toil: tiles go through the job store"


def test_a_staged_tile_whose_leader_ended_without_its_outcome_is_lost_not_running_for_ever(
    tmp_path, demo_archive
) -> None:
    backend = make_backend(load_campaign(demo_config(tmp_path, demo_archive, backend=toil_backend("single_machine"))))
    batch = backend.shared / "batches" / "b1"
    tile = backend.shared / "tiles" / "t1" / "attempt-1"
    for folder in (batch, tile):
        folder.mkdir(parents=True)
    (tile / "batch").write_text(f"{batch}\n")
    (tile / "staged").write_text("staged\n")
    (batch / "runner.pid").write_text("999999999 0\n")  # a runner that is gone...
    (batch / "exit_code").write_text("1\n")  # ...after its leader failed
    (batch / "leader.log").write_text("RunStaged failed: the node ran out of disk\n")
    status = backend.poll([str(tile)])[str(tile)]
    assert status.state is RemoteState.LOST and status.retryable, status
    assert "ran out of disk" in (status.error or "") and status.log_path == str(batch / "leader.log")
    stopped = "ogc-upscaler: stopped 30 s before the SLURM job's time limit (raise toil.slurm.time)"
    (tile / "stderr.log").write_text(f"INFO [job run] start\n{stopped}\n")  # the tile ran, and said why it stopped
    status = backend.poll([str(tile)])[str(tile)]
    assert status.log_path == str(tile / "stderr.log") and (status.error or "").endswith(stopped)
    (tile / "exit_code").write_text("0\n")  # had it come back, its outcome would count
    assert backend.poll([str(tile)])[str(tile)].state is RemoteState.SUCCEEDED


@pytest.mark.parametrize(
    ("toil", "message"),
    [
        ({"batch_system": "kubernetes"}, "kubernetes needs kubernetes.job_store"),
        (
            {"batch_system": "kubernetes", "staging": "shared", "kubernetes": {"job_store": "aws:eu-west-1:up"}},
            "kubernetes needs staging: jobstore",
        ),
        (
            {"batch_system": "kubernetes", "batch_size": 5000, "kubernetes": {"job_store": "aws:eu-west-1:up"}},
            "at most 2000 tiles per batch",
        ),
        ({"staging": "s3"}, "staging"),
        ({"batch_system": "pbs"}, "batch_system"),
        ({"slurm": {"time": "two hours"}}, "time"),
    ],
)
def test_bad_toil_settings_are_refused(tmp_path, toil, message) -> None:
    from ogc_upscaler.errors import InvalidConfig

    with pytest.raises(InvalidConfig, match=message):
        load_campaign(flaky_config(tmp_path, backend={"type": "toil", "toil": toil}))


def test_a_tile_that_ran_out_of_memory_asks_for_more_in_its_next_batch(tmp_path, demo_archive) -> None:
    from ogc_upscaler.backends.base import JobRequest

    campaign = load_campaign(demo_config(tmp_path, demo_archive, backend=toil_backend("single_machine")))
    backend = make_backend(campaign)
    backend.flush = lambda force=True: None  # queue only: no leader is started here
    with JobStore.open(campaign.store) as store:
        from ogc_upscaler.plan import plan

        plan(campaign, store)
        first, second = list(store.jobs())[:2]
    tiles = [
        Path(backend.submit(JobRequest(first.job_id, 1, dict(first.inputs)))),
        Path(backend.submit(JobRequest(second.job_id, 2, dict(second.inputs), memory_scale=2.25))),
    ]
    spec = backend.batch_spec(tiles)
    ram = backend.package.ram_mib
    assert [t["memory"] for t in spec["tiles"]] == [f"{ram}Mi", f"{round(ram * 2.25)}Mi"]
    assert spec["memory"] == f"{ram}Mi"


@pytest.mark.usefixtures("slurm")
def test_a_package_asking_more_than_the_largest_slurm_node_is_refused_before_any_job(tmp_path, demo_archive) -> None:
    ndvi = Path(__file__).parents[2] / "app_packages" / "ndvi" / "ndvi.cwl"
    package = tmp_path / "big.cwl"
    package.write_text(ndvi.read_text().replace("coresMin: 1", "coresMin: 64"))
    process = {
        "application": str(package),
        "inputs": yaml.safe_load(demo_config(tmp_path / "d", demo_archive).read_text())["process"]["inputs"],
    }
    config = demo_config(tmp_path, demo_archive, backend=toil_backend("slurm"), process=process)
    with pytest.raises(InvalidPackage, match=r"tool ndvi-tile asks 64 cores .* more than the largest SLURM node"):
        make_backend(load_campaign(config))
