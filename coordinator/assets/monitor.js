// The gridcc monitor page: one EventSource on /api/v1/events. The first
// event is a snapshot of the coordinator's state; then come `job` events
// (a job placed, ended, or its outcome learned later) and a `tick` each
// second (a sample, the workers, the clients). What this page keeps is
// bounded: jobs of the last WINDOW_MS (at most MAX_JOBS) and MAX_SAMPLES
// samples, so a page left open for a day holds what it held after ten
// minutes. Data goes into the DOM as text and attributes only, never as
// HTML.
"use strict";

const WINDOW_MS = 10 * 60 * 1000;
// How much of the window is visible at once: the zoom menu, or
// `#zoom=SECONDS` in the address.
let visibleMs = 90 * 1000;
const MAX_JOBS = 5000;
const MAX_SAMPLES = 600;
const ROW_H = 16;
const AXIS_H = 18;
const SVG = "http://www.w3.org/2000/svg";

const state = {
  workers: new Map(),
  jobs: new Map(),
  samples: [],
  clients: [],
  // Server clock minus this browser's, from the snapshot.
  skewMs: 0,
  live: false,
};

function serverNow() {
  return Date.now() + state.skewMs;
}

function el(name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function html(name, text, cls) {
  const node = document.createElement(name);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

function upsertJob(job) {
  // Re-inserted so the map stays in update order: pruning drops the
  // least recently changed first.
  state.jobs.delete(job.id);
  state.jobs.set(job.id, job);
}

function prune() {
  const horizon = serverNow() - WINDOW_MS;
  for (const [id, job] of state.jobs) {
    if (job.end_ms !== null && job.end_ms < horizon) state.jobs.delete(id);
  }
  while (state.jobs.size > MAX_JOBS) {
    state.jobs.delete(state.jobs.keys().next().value);
  }
  if (state.samples.length > MAX_SAMPLES) {
    state.samples.splice(0, state.samples.length - MAX_SAMPLES);
  }
}

function fmtSeconds(ms) {
  const s = ms / 1000;
  return s < 10 ? s.toFixed(2) + " s" : s.toFixed(1) + " s";
}

const OUTCOME_TEXT = {
  running: "running",
  ok: "remote ok",
  compile_error: "compile error",
  shared_hit: "shared-cache hit",
  retried: "failed, retried elsewhere",
  failed: "failed",
  local: "compiled locally",
};

function renderWorkers() {
  const body = document.querySelector("#workers tbody");
  body.replaceChildren();
  for (const w of state.workers.values()) {
    const tr = html("tr", undefined, "worker " + w.state);
    tr.dataset.state = w.state;
    tr.dataset.address = w.address;
    const cells = [
      w.address, w.hostname, w.state, w.slots, w.running, w.queued,
      w.cpu_quota.toFixed(2), w.speed.toFixed(2), w.job_mode, w.jobs_done, w.jobs_failed,
    ];
    cells.forEach((v, i) => {
      const td = html("td", String(v));
      if (i === 2) td.className = "state-" + w.state;
      tr.append(td);
    });
    body.append(tr);
  }
}

function renderChart(id, scaleId, values, capacity) {
  const svg = document.getElementById(id);
  svg.replaceChildren();
  const top = Math.max(1, ...values, ...(capacity || []));
  const n = Math.max(values.length, 2);
  const points = (vs) =>
    vs.map((v, i) => `${(i * 300) / (n - 1)},${90 - (v / top) * 86}`).join(" ");
  if (capacity) svg.append(el("polyline", { class: "capacity", points: points(capacity) }));
  svg.append(el("polyline", { points: points(values) }));
  const last = values.length ? values[values.length - 1] : 0;
  const span = values.length < 120 ? `${values.length} s` : `${Math.round(values.length / 60)} min`;
  document.getElementById(scaleId).textContent = `now ${last}, top ${top}, last ${span}`;
}

function renderCharts() {
  const s = state.samples;
  renderChart("chart-queue", "scale-queue", s.map((x) => x.queue));
  renderChart("chart-rate", "scale-rate", s.map((x) => x.jobs_per_s));
  renderChart("chart-busy", "scale-busy", s.map((x) => x.busy_slots), s.map((x) => x.slots));
}

function renderClients() {
  const list = document.getElementById("clients");
  list.replaceChildren();
  const active = state.clients.filter((c) => c.running > 0 || c.jobs_last_minute > 0);
  if (!active.length) list.append(html("li", "nobody is building"));
  for (const c of active) {
    const li = html("li");
    li.className = "client";
    const bar = html("span", undefined, "share");
    bar.style.width = Math.max(2, Math.round(c.share * 120)) + "px";
    li.append(
      html("span", c.client, "name"),
      bar,
      html("span", `${Math.round(c.share * 100)} % (${c.running} running, ${c.jobs_last_minute} in the last minute)`),
    );
    list.append(li);
  }
}

// Rows: one per worker slot (lanes beyond the slot count appear when a
// worker had more jobs than slots), then one for jobs compiled locally.
function ganttRows() {
  const rows = [];
  const lanesOf = new Map();
  for (const job of state.jobs.values()) {
    if (job.worker !== null) {
      lanesOf.set(job.worker, Math.max(lanesOf.get(job.worker) || 0, job.lane + 1));
    }
  }
  const index = new Map();
  const workerIds = new Set([...state.workers.keys(), ...lanesOf.keys()]);
  for (const id of [...workerIds].sort((a, b) => a - b)) {
    const w = state.workers.get(id);
    const lanes = Math.max(lanesOf.get(id) || 0, w && w.state !== "gone" ? w.slots : 0);
    for (let lane = 0; lane < lanes; lane++) {
      index.set(`${id}/${lane}`, rows.length);
      rows.push(`${w ? w.address : "worker " + id} #${lane + 1}`);
    }
  }
  index.set("local", rows.length);
  rows.push("compiled locally");
  return { rows, index };
}

let lastScrollWidth = 0;

function renderGantt() {
  const scroll = document.getElementById("gantt-scroll");
  const atEnd = scroll.scrollLeft + scroll.clientWidth >= lastScrollWidth - 4;
  const { rows, index } = ganttRows();
  const now = serverNow();
  const from = now - WINDOW_MS;
  const visibleW = Math.max(300, scroll.clientWidth);
  const pxPerMs = visibleW / visibleMs;
  const width = Math.round(WINDOW_MS * pxPerMs);
  const height = AXIS_H + rows.length * ROW_H;
  const x = (t) => (t - from) * pxPerMs;

  const labels = document.getElementById("gantt-labels");
  labels.setAttribute("height", height);
  labels.replaceChildren();
  rows.forEach((name, i) =>
    labels.append(el("text", { x: 4, y: AXIS_H + i * ROW_H + 12 }, name)));

  const svg = document.getElementById("gantt");
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  const parts = [];
  rows.forEach((_, i) => {
    if (i % 2) parts.push(el("rect", { class: "lane-odd", x: 0, y: AXIS_H + i * ROW_H, width, height: ROW_H }));
  });
  // A tick every 30 s, labelled with the wall-clock time.
  for (let t = Math.ceil(from / 30000) * 30000; t <= now; t += 30000) {
    parts.push(el("line", { class: "tick", x1: x(t), x2: x(t), y1: AXIS_H - 4, y2: height }));
    const label = new Date(t - state.skewMs).toLocaleTimeString();
    parts.push(el("text", { class: "tick", x: x(t) + 2, y: 11 }, label));
  }
  for (const job of state.jobs.values()) {
    const row = job.worker === null ? index.get("local") : index.get(`${job.worker}/${job.lane}`);
    if (row === undefined) continue;
    const end = job.end_ms === null ? now : job.end_ms;
    const w = Math.max(job.worker === null ? 3 : 2, x(end) - x(job.start_ms));
    const y = AXIS_H + row * ROW_H + 1;
    const bar = el("rect", {
      class: "bar " + job.outcome,
      "data-outcome": job.outcome,
      "data-id": job.id,
      x: x(job.start_ms), y, width: w, height: ROW_H - 2,
    });
    const took = job.worker === null ? "" : ", " + fmtSeconds(end - job.start_ms);
    bar.append(el("title", {}, `${job.file || "?"} from ${job.client}${took}: ${OUTCOME_TEXT[job.outcome] || job.outcome}`));
    parts.push(bar);
    const label = job.file || "";
    if (label && w > label.length * 6 + 6) {
      parts.push(el("text", { x: x(job.start_ms) + 3, y: y + 11 }, label));
    }
  }
  parts.push(el("line", { class: "now", x1: x(now), x2: x(now), y1: 0, y2: height }));
  svg.replaceChildren(...parts);
  lastScrollWidth = scroll.scrollWidth;
  // Follow the present unless the reader scrolled back in time.
  if (atEnd) scroll.scrollLeft = scroll.scrollWidth;
}

function renderTotals() {
  let running = 0;
  for (const job of state.jobs.values()) if (job.outcome === "running") running++;
  const last = state.samples[state.samples.length - 1];
  const text = last
    ? `${running} running · ${last.busy_slots}/${last.slots} slots busy · queue ${last.queue}`
    : `${running} running`;
  document.getElementById("totals").textContent = text;
}

function render() {
  prune();
  renderWorkers();
  renderCharts();
  renderClients();
  renderGantt();
  renderTotals();
}

// At most five renders a second, however many events arrive: the first
// event after a quiet spell renders at once, later ones are batched.
const RENDER_GAP_MS = 200;
let lastRender = 0;
let renderPending = false;
function scheduleRender() {
  if (renderPending) return;
  const wait = lastRender + RENDER_GAP_MS - Date.now();
  if (wait <= 0) {
    lastRender = Date.now();
    render();
    return;
  }
  renderPending = true;
  setTimeout(() => {
    renderPending = false;
    lastRender = Date.now();
    render();
  }, wait);
}

function setLive(live, text) {
  state.live = live;
  const conn = document.getElementById("conn");
  conn.textContent = text;
  conn.className = "conn " + (live ? "live" : "down");
}

function connect() {
  const events = new EventSource("/api/v1/events");
  events.addEventListener("snapshot", (e) => {
    const s = JSON.parse(e.data);
    state.skewMs = s.now_ms - Date.now();
    state.workers = new Map(s.workers.map((w) => [w.id, w]));
    state.jobs = new Map();
    for (const job of s.jobs) upsertJob(job);
    for (const job of s.running) upsertJob(job);
    state.samples = s.samples.slice();
    state.clients = s.clients;
    setLive(true, "live");
    scheduleRender();
  });
  events.addEventListener("job", (e) => {
    upsertJob(JSON.parse(e.data));
    scheduleRender();
  });
  events.addEventListener("tick", (e) => {
    const t = JSON.parse(e.data);
    state.samples.push(t.sample);
    state.workers = new Map(t.workers.map((w) => [w.id, w]));
    state.clients = t.clients;
    scheduleRender();
  });
  // EventSource reconnects by itself, and the new stream starts with a
  // fresh snapshot.
  events.onerror = () => setLive(false, "reconnecting…");
}

function setupZoom() {
  const zoom = document.getElementById("zoom");
  const fromHash = /zoom=(\d+)/.exec(location.hash);
  if (fromHash && [...zoom.options].some((o) => o.value === fromHash[1])) {
    zoom.value = fromHash[1];
  }
  const apply = () => {
    visibleMs = Number(zoom.value) * 1000;
    // Show the present after a zoom.
    lastScrollWidth = 0;
    scheduleRender();
  };
  zoom.addEventListener("change", apply);
  apply();
}

setupZoom();
connect();
setInterval(scheduleRender, 1000);
