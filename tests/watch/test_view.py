"""The watch page's answers, read from a real store: tiles as the page decodes them, one state byte per tile,
failures by cause, logs, requests guarded by the page's token, and the page refused until it is built."""

from __future__ import annotations

import io
import json
import os
import struct

import numpy as np
import pytest
import shapely

from ogc_upscaler.control import Requests
from ogc_upscaler.errors import InvalidInput
from ogc_upscaler.store import JobSpec, JobStore, Move, TileRecord
from ogc_upscaler.tile_states import ORDER
from ogc_upscaler.watch import app as app_module
from ogc_upscaler.watch.app import WatchApp
from ogc_upscaler.watch.view import MAGIC, StoreView

WINDOWS = (("2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z"), ("2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z"))
TOKEN = "secret-of-the-page"


def footprint(i: int) -> shapely.Geometry:
    if i == 3:  # a tile split at the antimeridian: two rings
        return shapely.MultiPolygon([shapely.box(179.9, 10, 180, 10.1), shapely.box(-180, 10, -179.9, 10.1)])
    return shapely.box(10 + 0.1 * i, 45, 10.1 + 0.1 * i, 45.1)


@pytest.fixture
def path(tmp_path):
    path = tmp_path / "campaign.sqlite"
    with JobStore.open(path) as store:
        store.put_tiles(
            TileRecord(f"T{i}", 32632, (0, 0, 1, 1), shapely.to_wkb(footprint(i)), 1.0, {"country": "AT"})
            for i in range(5)
        )
        store.insert(
            JobSpec(f"T{i}_{w}", f"T{i}", *WINDOWS[w], "default", "{}", "{}", f"h{i}{w}")
            for i in range(5)
            for w in range(2)
        )
        store.set_meta("campaign", "alps")
        store.set_meta("aoi", {"type": "Polygon", "coordinates": [[[10, 45], [11, 45], [11, 46], [10, 45]]]})
        log = tmp_path / "T1_0.log"
        log.write_text("starting\n" + "x" * 70_000 + "\nValueError: band B08 missing in /data/T1.tif\n")
        for job_id, tile in (("T1_0", "T1"), ("T2_1", "T2")):
            assert store.move(job_id, Move.SUBMIT, backend="cwltool", remote_id=f"r-{job_id}")
            error = f"ValueError: band B08 missing in /data/{tile}.tif"
            assert store.move(job_id, Move.FAIL, error=error, error_kind="run:permanent", log_path=str(log))
        assert store.move("T0_0", Move.SUBMIT, backend="cwltool", remote_id="r-T0_0")
        assert store.move("T0_0", Move.START)
    return path


def get(app: WatchApp, target: str) -> app_module.Response:
    route, _, query = target.partition("?")
    params = dict(p.split("=", 1) for p in query.split("&") if p)
    return app.respond("GET", route, params, {}, b"")


def decode(body: bytes) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    magic, tiles, rings, points = struct.unpack_from("<4I", body)
    assert magic == MAGIC
    at = 16
    ring_tile = np.frombuffer(body, "<u4", rings, at)
    starts = np.frombuffer(body, "<u4", rings + 1, at + 4 * rings)
    coords = np.frombuffer(body, "<f4", 2 * points, at + 8 * rings + 4).reshape(-1, 2)
    assert len(body) == at + 8 * rings + 4 + 8 * points
    return tiles, ring_tile, starts, coords


def test_tiles_decode_to_their_footprints_each_ring_naming_its_tile(path) -> None:
    tiles, ring_tile, starts, coords = decode(StoreView(path).geometry())
    assert tiles == 5 and list(ring_tile) == [0, 1, 2, 3, 3, 4]  # the split tile has two rings
    for ring, tile in enumerate(ring_tile):
        drawn = shapely.Polygon(coords[starts[ring] : starts[ring + 1]])
        part = shapely.get_parts(footprint(int(tile)))[ring - 3 if tile == 3 else 0]
        assert shapely.hausdorff_distance(drawn, part) < 1e-5  # float32: within a metre


def test_one_byte_per_tile_gives_its_state_in_each_window_or_in_all(path) -> None:
    view = StoreView(path)
    code = {state: i + 1 for i, state in enumerate(ORDER)}
    every = list(view.states(None))
    # T0 runs in the first window and waits in the second: the less advanced shows; a failure shows first
    assert every == [code["planned"], code["failed"], code["failed"], code["planned"], code["planned"]]
    first = list(view.states("/".join(WINDOWS[0])))
    assert first == [code["running"], code["failed"], code["planned"], code["planned"], code["planned"]]
    with pytest.raises(InvalidInput, match="no window"):
        view.states("1999-01-01T00:00:00Z/1999-02-01T00:00:00Z")


def test_the_summary_follows_the_store_as_the_manager_writes_it(path) -> None:
    view = StoreView(path)
    before = view.summary()
    assert before.campaign == "alps" and before.total == 10 and before.counts["failed"] == 2
    assert before.per_window["/".join(WINDOWS[1])] == {"planned": 4, "failed": 1} and before.windows == list(WINDOWS)
    assert before.per_backend == {"cwltool": {"failed": 2, "running": 1}}
    assert before.rate_per_hour is not None and before.rate_per_hour > 0  # two jobs ended just now
    assert before.attachment.pid == os.getpid() and before.attachment.attached is None  # alive, no lock held
    with JobStore.open(path) as store:
        assert store.move("T0_0", Move.SUCCEED)
    after = view.summary()
    assert after.version != before.version and after.counts["succeeded"] == 1 and "running" not in after.counts


def test_failures_are_grouped_by_cause_whatever_tile_they_name(path) -> None:
    (group,) = StoreView(path).failures()
    assert group.cause == "run: ValueError: band B08 missing in <path>" and group.count == 2
    assert group.job_ids == ("T1_0", "T2_1")


def test_a_tile_lists_its_jobs_and_a_log_ends_with_its_last_lines(path) -> None:
    app = WatchApp(StoreView(path), TOKEN)
    index = json.loads(get(app, "api/locate?tile=T1").body)["index"]
    tile = json.loads(get(app, f"api/tile?i={index}").body)
    assert tile["tile_id"] == "T1" and tile["props"] == {"country": "AT"}
    assert [(j["job_id"], j["state"], j["has_log"]) for j in tile["jobs"]] == [
        ("T1_0", "failed", True),
        ("T1_1", "planned", False),
    ]
    log = get(app, "api/log?job=T1_0")
    assert log.status == 200 and log.body.decode().endswith("band B08 missing in /data/T1.tif\n")
    assert len(log.body) < 70_000 and log.body.startswith(b"\xe2\x80\xa6 (the last 64 KiB")
    assert get(app, "api/log?job=nope").status == 404
    assert get(app, "api/tile?i=99").status == 404 and get(app, "api/tile?i=x").status == 400


def test_requests_need_the_pages_token_and_a_known_action(path) -> None:
    app = WatchApp(StoreView(path), TOKEN)
    body = json.dumps({"action": "retry", "cause": "run: ValueError: band B08 missing in <path>"}).encode()
    assert app.respond("POST", "api/requests", {}, {}, body).status == 403
    assert app.respond("POST", "api/requests", {}, {"x-watch-token": "guess"}, body).status == 403
    bad = app.respond("POST", "api/requests", {}, {"x-watch-token": TOKEN}, b'{"action": "drop"}')
    assert bad.status == 400 and "unknown action" in json.loads(bad.body)["error"]
    assert app.respond("POST", "api/requests", {}, {"x-watch-token": TOKEN}, b"[1]").status == 400
    asked = app.respond("POST", "api/requests", {}, {"x-watch-token": TOKEN}, body)
    assert asked.status == 202
    (shown,) = Requests(path).shown()
    assert shown.request.request_id == json.loads(asked.body)["request_id"] and shown.answer is None
    with JobStore.read(path) as store:  # asking wrote nothing to the store
        assert store.get("T1_0").state.value == "failed"


def test_the_page_carries_its_token_and_only_its_own_files_are_served(path) -> None:
    app = WatchApp(StoreView(path), TOKEN)
    page = get(app, "")
    assert page.status == 200 and f'content="{TOKEN}"' in page.body.decode()
    assert get(app, "static/build/watch.js").status == 200
    assert get(app, "static/watch.css").content_type == "text/css"
    for sneaky in ("static/../view.py", "static/build/../../app.py", "static/.hidden", "api/nothing"):
        assert get(app, sneaky).status == 404, sneaky
    assert app.respond("DELETE", "api/summary", {}, {}, b"").status == 405


def test_a_page_never_built_is_refused_saying_how_to_build_it(path, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(app_module, "STATIC", tmp_path / "static")
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "index.html").write_text("{{token}}")
    answer = get(WatchApp(StoreView(path), TOKEN), "")
    assert answer.status == 503 and "scripts/web.sh" in json.loads(answer.body)["hint"]


def test_the_wsgi_entry_answers_like_respond(path) -> None:
    app = WatchApp(StoreView(path), TOKEN)
    seen: list[str] = []
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/api/summary", "QUERY_STRING": "", "wsgi.input": io.BytesIO()}
    body = b"".join(app(environ, lambda status, headers: seen.append(status)))
    assert seen == ["200 OK"] and json.loads(body)["total"] == 10


def test_a_page_on_loopback_answers_only_to_its_own_names(path) -> None:
    from ogc_upscaler.watch.serve import watch_server

    server, url = watch_server(path, port=0)
    try:
        app = server.get_app()
        port = server.server_port
        assert url == f"http://127.0.0.1:{port}/"
        asked = {"host": f"127.0.0.1:{port}"}
        assert app.respond("GET", "api/summary", {}, asked, b"").status == 200
        assert app.respond("GET", "api/summary", {}, {"host": f"localhost:{port}"}, b"").status == 200
        rebound = app.respond("GET", "", {}, {"host": f"evil.example:{port}"}, b"")  # a DNS trick onto loopback
        assert rebound.status == 403 and TOKEN not in rebound.body.decode()
    finally:
        server.server_close()
