// The watch page: a campaign's tiles on a map, coloured by state, over Natural Earth's coastlines and
// borders; counts, rate and time left; failures by cause; a tile's jobs and logs; requests to the manager.
//
// Tiles come once as one binary answer (api/tiles) and are projected once; their states come as one
// byte per tile (api/states) whenever the store changed. Each state is one Path2D, filled in one call,
// so 100,000 tiles draw in a few tens of milliseconds and zooming only changes the canvas transform.
import { geoNaturalEarth1, geoPath } from "d3-geo";
import { feature, mesh } from "topojson-client";

const MAGIC = 0x57415443;
const POLL_MS = 2000;
const token = document.querySelector('meta[name="watch-token"]').content;
const $ = (id) => document.getElementById(id);

const page = {
  summary: null,
  window: "",
  version: null,
  tiles: null, // {count, ringTile, ringStart, lonlat, xy, boxes}
  codes: null, // Uint8Array, one state code per tile
  paths: [], // Path2D per state code
  outline: null, // Path2D of every tile (drawn when zoomed in)
  world: null, // Natural Earth's countries (TopoJSON)
  aoiGeojson: null,
  projection: null,
  land: null,
  borders: null,
  coast: null,
  aoi: null,
  view: { k: 1, x: 0, y: 0 },
  selected: null,
  layer: null, // the tiles and basemap, rendered offscreen at layerView
  layerView: null,
  drawMs: 0, // the last draw
  groupMs: 0, // the last grouping of tiles by state (after the states changed)
  drawnAt: 0,
};

async function get(path, kind = "json") {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      message = body.hint ? `${body.error} (${body.hint})` : body.error;
    } catch (_) {}
    throw new Error(message);
  }
  return kind === "json" ? response.json() : kind === "text" ? response.text() : response.arrayBuffer();
}

async function ask(action, cause = null) {
  const response = await fetch("api/requests", {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Watch-Token": token },
    body: JSON.stringify(cause ? { action, cause } : { action }),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error);
  await refreshRequests();
  return body.request_id;
}

// -- geometry ------------------------------------------------------------------------------------

function readTiles(buffer) {
  const head = new Uint32Array(buffer, 0, 4);
  if (head[0] !== MAGIC) throw new Error("api/tiles did not answer with tiles");
  const [, count, rings, points] = head;
  let at = 16;
  const ringTile = new Uint32Array(buffer, at, rings);
  at += 4 * rings;
  const ringStart = new Uint32Array(buffer, at, rings + 1);
  at += 4 * (rings + 1);
  const lonlat = new Float32Array(buffer, at, 2 * points);
  return { count, rings, ringTile, ringStart, lonlat, xy: new Float32Array(2 * points), boxes: new Float32Array(4 * rings) };
}

function makeProjection(canvas) {
  const t = page.tiles;
  let west = 180, east = -180, south = 90, north = -90;
  for (let i = 0; i < t.lonlat.length; i += 2) {
    const lon = t.lonlat[i], lat = t.lonlat[i + 1];
    if (lon < west) west = lon;
    if (lon > east) east = lon;
    if (lat < south) south = lat;
    if (lat > north) north = lat;
  }
  if (west > east) [west, east, south, north] = [-180, 180, -60, 75];
  const centre = (west + east) / 2;
  const corners = [];
  for (let f = 0; f <= 1; f += 0.25) {
    corners.push([west + f * (east - west), south], [west + f * (east - west), north]);
    corners.push([west, south + f * (north - south)], [east, south + f * (north - south)]);
  }
  const pad = 12;
  return geoNaturalEarth1()
    .rotate([-centre, 0])
    .fitExtent([[pad, pad], [canvas.clientWidth - pad, canvas.clientHeight - pad]], { type: "MultiPoint", coordinates: corners });
}

function project(projection) {
  const t = page.tiles;
  for (let i = 0; i < t.lonlat.length; i += 2) {
    const p = projection([t.lonlat[i], t.lonlat[i + 1]]) || [NaN, NaN];
    t.xy[i] = p[0];
    t.xy[i + 1] = p[1];
  }
  for (let r = 0; r < t.rings; r++) {
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (let p = t.ringStart[r]; p < t.ringStart[r + 1]; p++) {
      const x = t.xy[2 * p], y = t.xy[2 * p + 1];
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
    t.boxes.set([x0, y0, x1, y1], 4 * r);
  }
  const outline = new Path2D();
  for (let r = 0; r < t.rings; r++) addRing(outline, r);
  page.outline = outline;
}

// Rings come closed (their last point is their first), and a fill closes them anyway: no closePath,
// which Chromium pays for with every subpath already in the path (77,000 tiles took 71 s, 73 ms without).
function addRing(path, r) {
  const t = page.tiles;
  const start = t.ringStart[r], end = t.ringStart[r + 1];
  path.moveTo(t.xy[2 * start], t.xy[2 * start + 1]);
  for (let p = start + 1; p < end; p++) path.lineTo(t.xy[2 * p], t.xy[2 * p + 1]);
}

function groupByState() {
  const started = performance.now();
  const t = page.tiles;
  const n = page.summary.states.length + 1;
  const paths = Array.from({ length: n }, () => new Path2D());
  for (let r = 0; r < t.rings; r++) addRing(paths[page.codes[t.ringTile[r]]], r);
  page.paths = paths;
  page.groupMs = performance.now() - started;
}

// The AOI's rings as lines: d3 reads a polygon's winding on the sphere, and a ring wound the other way
// round would be the rest of the globe; an outline is the same either way.
function rings(geojson, out = []) {
  if (!geojson) return out;
  if (geojson.type === "FeatureCollection") geojson.features.forEach((f) => rings(f, out));
  else if (geojson.type === "Feature") rings(geojson.geometry, out);
  else if (geojson.type === "GeometryCollection") geojson.geometries.forEach((g) => rings(g, out));
  else if (geojson.type === "Polygon") out.push(...geojson.coordinates);
  else if (geojson.type === "MultiPolygon") geojson.coordinates.forEach((p) => out.push(...p));
  return out;
}

// The basemap and the AOI outline, projected: again whenever the map's size changes.
function projectOverlays(projection) {
  const path = geoPath(projection);
  if (page.world) {
    const world = page.world;
    page.land = new Path2D(path(feature(world, world.objects.land)) || "");
    page.borders = new Path2D(path(mesh(world, world.objects.countries, (a, b) => a !== b)) || "");
    page.coast = new Path2D(path(mesh(world, world.objects.land)) || "");
  }
  if (page.aoiGeojson) page.aoi = new Path2D(path({ type: "MultiLineString", coordinates: rings(page.aoiGeojson) }) || "");
}

// -- drawing -------------------------------------------------------------------------------------

// The map is painted in two layers: the tiles with the basemap, rendered into an offscreen canvas
// whenever the states or the view settle (100,000 tiles take about a tenth of a second to rasterize),
// and the main canvas, which shows that layer, moved and scaled to the current view, plus the selected
// tile. A zoom or a drag only moves the layer; it is rendered again once the gesture pauses.
const SETTLE_MS = 150;
let settleTimer = null;

function renderLayer() {
  const canvas = $("map");
  const ratio = window.devicePixelRatio || 1;
  const layer = page.layer && page.layer.width === canvas.width && page.layer.height === canvas.height
    ? page.layer
    : Object.assign(document.createElement("canvas"), { width: canvas.width, height: canvas.height });
  const ctx = layer.getContext("2d");
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = "#dfeaf3";
  ctx.fillRect(0, 0, layer.width, layer.height);
  const { k, x, y } = page.view;
  ctx.setTransform(ratio * k, 0, 0, ratio * k, ratio * x, ratio * y);
  if (page.land) {
    ctx.fillStyle = "#f7f5ef";
    ctx.fill(page.land);
  }
  const colours = page.summary.colours;
  page.summary.states.forEach((state, i) => {
    ctx.fillStyle = colours[state];
    ctx.fill(page.paths[i + 1]);
  });
  if (page.borders) {
    ctx.lineWidth = 0.7 / k;
    ctx.strokeStyle = "#8a8a8a";
    ctx.stroke(page.borders);
    ctx.lineWidth = 0.9 / k;
    ctx.strokeStyle = "#5b6f80";
    ctx.stroke(page.coast);
  }
  if (page.aoi) {
    ctx.lineWidth = 1.6 / k;
    ctx.strokeStyle = "#000";
    ctx.stroke(page.aoi);
  }
  const perTile = (canvas.clientWidth * k) / Math.sqrt(Math.max(1, page.tiles.count));
  if (perTile > 6) {
    ctx.lineWidth = 0.5 / k;
    ctx.strokeStyle = "rgba(40, 60, 80, 0.55)";
    ctx.stroke(page.outline);
  }
  page.layer = layer;
  page.layerView = { ...page.view };
}

// Show the map: the layer (rendered again first if `fresh`, i.e. the states or the basemap changed),
// then the selected tile's outline.
function draw(fresh = true) {
  if (!page.codes || !page.summary) return; // nothing read yet
  if (!$("map").width || !$("map").height) return; // not laid out (yet): drawn when it is
  const started = performance.now();
  if (fresh || !page.layer) renderLayer();
  const canvas = $("map");
  const ratio = window.devicePixelRatio || 1;
  const ctx = canvas.getContext("2d");
  const { k, x, y } = page.view;
  const was = page.layerView;
  const scale = k / was.k;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  if (scale !== 1 || x !== was.x || y !== was.y) {
    ctx.fillStyle = "#dfeaf3";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    clearTimeout(settleTimer);
    settleTimer = setTimeout(() => draw(true), SETTLE_MS);
  }
  ctx.setTransform(scale, 0, 0, scale, ratio * (x - was.x * scale), ratio * (y - was.y * scale));
  ctx.drawImage(page.layer, 0, 0);
  ctx.setTransform(ratio * k, 0, 0, ratio * k, ratio * x, ratio * y);
  if (page.selected !== null) {
    const path = new Path2D();
    for (let r = 0; r < page.tiles.rings; r++) if (page.tiles.ringTile[r] === page.selected) addRing(path, r);
    ctx.lineWidth = 2.5 / k;
    ctx.strokeStyle = "#111";
    ctx.stroke(path);
  }
  page.drawMs = performance.now() - started;
  page.drawnAt = Date.now();
  canvas.dataset.drawnAt = String(page.drawnAt);
}

function tileAt(px, py) {
  const { k, x, y } = page.view;
  const bx = (px - x) / k, by = (py - y) / k;
  const t = page.tiles;
  for (let r = 0; r < t.rings; r++) {
    const b = 4 * r;
    if (bx < t.boxes[b] || bx > t.boxes[b + 2] || by < t.boxes[b + 1] || by > t.boxes[b + 3]) continue;
    if (inside(bx, by, r)) return t.ringTile[r];
  }
  return null;
}

function inside(px, py, r) {
  const t = page.tiles;
  let hit = false;
  const start = t.ringStart[r], end = t.ringStart[r + 1];
  for (let i = start, j = end - 1; i < end; j = i++) {
    const xi = t.xy[2 * i], yi = t.xy[2 * i + 1], xj = t.xy[2 * j], yj = t.xy[2 * j + 1];
    if (yi > py !== yj > py && px < ((xj - xi) * (py - yi)) / (yj - yi) + xi) hit = !hit;
  }
  return hit;
}

function centreOf(index) {
  const t = page.tiles;
  for (let r = 0; r < t.rings; r++) {
    if (t.ringTile[r] !== index) continue;
    const b = 4 * r;
    const { k, x, y } = page.view;
    return [x + (k * (t.boxes[b] + t.boxes[b + 2])) / 2, y + (k * (t.boxes[b + 1] + t.boxes[b + 3])) / 2];
  }
  return null;
}

// -- panels --------------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("data-")) node.setAttribute(key, value);
    else if (key === "onclick") node.addEventListener("click", value);
    else node[key] = value;
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "not known yet";
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} days`;
}

function showSummary() {
  const s = page.summary;
  $("campaign").textContent = s.campaign;
  document.title = `${s.campaign} · ogc-upscaler watch`;
  const manager = $("manager");
  const a = s.attachment;
  manager.dataset.attached = a.attached === null ? "unknown" : String(a.attached);
  manager.textContent = a.line;
  $("paused").hidden = !s.paused;
  $("pause").textContent = s.paused ? "Resume submissions" : "Pause submissions";
  $("pause").dataset.action = s.paused ? "resume" : "pause";
  const rate = s.rate_per_hour ? `${s.rate_per_hour.toFixed(s.rate_per_hour < 10 ? 1 : 0)} jobs/h` : "no job finished in the last 10 min";
  $("progress").textContent = `${s.done.toLocaleString()} of ${s.total.toLocaleString()} jobs done · ${rate} · ${s.done === s.total ? "nothing left to run" : s.seconds_left ? "about " + duration(s.seconds_left) + " left" : "time left not known yet"}`;

  const select = $("window");
  const wanted = ["", ...s.windows.map((w) => `${w[0]}/${w[1]}`)];
  if (select.options.length !== wanted.length) {
    select.replaceChildren(el("option", { value: "" }, `all ${s.windows.length} windows`));
    for (const [start, end] of s.windows) select.append(el("option", { value: `${start}/${end}` }, `${start.slice(0, 10)} – ${end.slice(0, 10)}`));
    select.value = page.window;
  }
  const counts = page.window ? s.per_window[page.window] || {} : s.counts;
  const legend = $("legend");
  legend.replaceChildren(
    ...s.states.map((state) =>
      el(
        "li",
        { "data-state": state, "data-count": String(counts[state] || 0), className: counts[state] ? "" : "none" },
        el("span", { className: "swatch", style: `background:${s.colours[state]}` }),
        `${state.replace("_", " ")} `,
        el("b", {}, (counts[state] || 0).toLocaleString()),
      ),
    ),
  );
  const backends = $("backends");
  backends.replaceChildren(
    ...Object.entries(s.per_backend).map(([name, per]) =>
      el("li", { "data-backend": name }, `${name}: `, Object.entries(per).map(([st, n]) => `${n.toLocaleString()} ${st}`).join(", ")),
    ),
  );
  const windows = $("windows");
  windows.replaceChildren(
    ...s.windows.map(([start, end]) => {
      const per = s.per_window[`${start}/${end}`] || {};
      const done = (per.collected || 0) + (per.no_inputs || 0);
      const all = Object.values(per).reduce((a, b) => a + b, 0);
      return el("li", { "data-window": start }, `${start.slice(0, 10)} – ${end.slice(0, 10)}: ${done.toLocaleString()} of ${all.toLocaleString()} done`, per.failed ? `, ${per.failed} failed` : "");
    }),
  );
}

async function refreshFailures() {
  const groups = await get("api/failures");
  const list = $("failures");
  $("failures-none").hidden = groups.length > 0;
  list.replaceChildren(
    ...groups.map((g) =>
      el(
        "li",
        { "data-cause": g.cause, "data-count": String(g.count) },
        el("div", { className: "cause" }, el("b", {}, `${g.count.toLocaleString()} × `), g.cause),
        el("div", { className: "jobs" }, ...g.job_ids.map((id) => el("a", { href: "#", "data-job": id, onclick: (e) => (e.preventDefault(), showLog(id)) }, id))),
        el("button", { className: "retry-cause", onclick: () => ask("retry", g.cause).catch(fail) }, `Retry these ${g.count.toLocaleString()}`),
      ),
    ),
  );
}

async function refreshRequests() {
  const shown = await get("api/requests");
  $("requests").replaceChildren(
    ...shown.map(({ request, answer }) =>
      el(
        "li",
        { "data-request": request.request_id, "data-answered": String(answer !== null) },
        `${request.action}${request.cause ? ` (${request.cause})` : ""}: `,
        answer ? answer.message : page.summary.attachment.attached ? "waiting for the manager…" : "waits for a manager: start `ogc-upscaler run`",
      ),
    ),
  );
}

async function showTile(index) {
  page.selected = index;
  draw(false);
  const tile = await get(`api/tile?i=${index}`);
  const props = Object.entries(tile.props || {});
  $("tile").hidden = false;
  $("tile").dataset.tile = tile.tile_id;
  $("tile-id").textContent = tile.tile_id;
  $("tile-props").textContent = props.map(([k, v]) => `${k}: ${v}`).join(" · ");
  $("tile-jobs").replaceChildren(
    ...tile.jobs.map((job) =>
      el(
        "tr",
        { "data-job": job.job_id, "data-state": job.state },
        el("td", {}, job.window.replaceAll(/T[0-9:.]+Z?/g, "")),
        el("td", {}, job.params),
        el("td", { className: `state ${job.state}` }, job.state),
        el("td", {}, String(job.attempts)),
        el("td", {}, job.has_log ? el("button", { className: "log", onclick: () => showLog(job.job_id) }, "log") : ""),
        el("td", { className: "error" }, job.error || ""),
      ),
    ),
  );
}

async function showLog(jobId) {
  const response = await fetch(`api/log?job=${encodeURIComponent(jobId)}`, { cache: "no-store" });
  const text = await response.text();
  $("log-panel").hidden = false;
  $("log-title").textContent = `${jobId} ${response.headers.get("X-Log-Path") || ""}`;
  $("log").dataset.job = jobId;
  $("log").textContent = text;
}

function fail(err) {
  $("problem").hidden = false;
  $("problem").textContent = err.message || String(err);
}

// -- the loop ------------------------------------------------------------------------------------

// One refresh at a time, and the latest asked wins: a poll for the window the page showed before a
// change of window never draws over the new one. The version is taken only once all it shows is read,
// so a failed read is read again at the next poll.
let refreshes = 0;

async function refresh(force = false) {
  const mine = ++refreshes;
  const summary = await get("api/summary");
  if (mine !== refreshes) return;
  page.summary = summary;
  $("problem").hidden = true;
  showSummary();
  if (force || summary.version !== page.version) {
    const shown = page.window;
    const codes = new Uint8Array(await get(`api/states?window=${encodeURIComponent(shown)}`, "bytes"));
    if (mine !== refreshes || shown !== page.window) return;
    if (codes.length !== page.tiles.count) return location.reload(); // planned again: new tiles
    page.codes = codes;
    groupByState();
    draw();
    await refreshFailures();
    if (page.selected !== null) await showTile(page.selected);
    if (mine === refreshes) page.version = summary.version;
  }
  await refreshRequests();
}

// Polls one after the other (never two at once, however slow the server), also after a failed one.
function poll() {
  refresh()
    .catch(fail)
    .finally(() => setTimeout(poll, POLL_MS));
}

function installControls(canvas, redo) {
  let drag = null;
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const factor = Math.pow(1.0015, -e.deltaY);
    const v = page.view;
    const k = Math.min(5000, Math.max(0.5, v.k * factor));
    v.x = e.offsetX - ((e.offsetX - v.x) * k) / v.k;
    v.y = e.offsetY - ((e.offsetY - v.y) * k) / v.k;
    v.k = k;
    draw(false);
  }, { passive: false });
  canvas.addEventListener("pointerdown", (e) => {
    canvas.setPointerCapture(e.pointerId); // a button let go outside the map still ends the drag
    drag = { x: e.offsetX, y: e.offsetY, moved: false };
  });
  canvas.addEventListener("pointercancel", () => (drag = null));
  canvas.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const dx = e.offsetX - drag.x, dy = e.offsetY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
    if (!drag.moved) return;
    page.view.x += dx;
    page.view.y += dy;
    drag.x = e.offsetX;
    drag.y = e.offsetY;
    draw(false);
  });
  canvas.addEventListener("pointerup", (e) => {
    const moved = drag && drag.moved;
    drag = null;
    if (moved) return;
    const index = tileAt(e.offsetX, e.offsetY);
    if (index !== null) showTile(index).catch(fail);
  });
  $("window").addEventListener("change", (e) => {
    page.window = e.target.value;
    refresh(true).catch(fail);
  });
  $("retry-all").addEventListener("click", () => ask("retry").catch(fail));
  $("pause").addEventListener("click", (e) => ask(e.target.dataset.action).catch(fail));
  $("cancel").addEventListener("click", () => {
    if (confirm("Cancel every unfinished job of this campaign, on the backend too?")) ask("cancel").catch(fail);
  });
  $("home").addEventListener("click", () => ((page.view = { k: 1, x: 0, y: 0 }), draw()));
  $("log-close").addEventListener("click", () => ($("log-panel").hidden = true));
  let size = [canvas.clientWidth, canvas.clientHeight];
  new ResizeObserver(() => {
    if (size[0] === canvas.clientWidth && size[1] === canvas.clientHeight) return;
    size = [canvas.clientWidth, canvas.clientHeight];
    redo();
  }).observe(canvas);
}

function resize() {
  const canvas = $("map");
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(canvas.clientWidth * ratio);
  canvas.height = Math.round(canvas.clientHeight * ratio);
  page.projection = makeProjection(canvas);
  project(page.projection);
  projectOverlays(page.projection);
  if (page.codes) {
    groupByState();
    draw();
  }
}

async function start() {
  page.tiles = readTiles(await get("api/tiles", "bytes"));
  resize();
  installControls($("map"), resize);
  try {
    await refresh(true);
  } finally {
    setTimeout(poll, POLL_MS); // a first read that failed is tried again: the page never goes dead
  }
  const overlays = [
    get("static/build/world.json").then((world) => (page.world = world)),
    get("api/aoi").then((aoi) => (page.aoiGeojson = aoi)),
  ];
  Promise.all(overlays)
    .then(() => {
      projectOverlays(page.projection);
      draw();
    })
    .catch(fail);
}

window.ogcWatch = {
  ready: start().catch((err) => {
    fail(err);
    throw err;
  }),
  // where a tile is drawn (CSS pixels from the canvas's corner), for tests and for links to a tile
  async locate(tileId) {
    const { index } = await get(`api/locate?tile=${encodeURIComponent(tileId)}`);
    return centreOf(index);
  },
  stats: () => ({ drawMs: page.drawMs, groupMs: page.groupMs, version: page.version, drawnAt: page.drawnAt, tiles: page.tiles ? page.tiles.count : 0, view: { ...page.view } }),
  // draw now (the layer too if `fresh`); with `settled`, until the canvas is painted (drawing is deferred
  // until a pixel is read)
  redraw(settled = false, fresh = true) {
    const started = performance.now();
    draw(fresh);
    if (settled) $("map").getContext("2d").getImageData(0, 0, 1, 1);
    return performance.now() - started;
  },
};
