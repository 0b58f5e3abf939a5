// envreel view: the page. It composes nothing itself: every picture is a frame composed by
// envreel.render on the server (/api/frame), for the layout the controls describe; the page
// fetches the frame it shows (and the next, while playing) and one env's strip.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  run: null,        // /api/run
  plan: null,       // /api/layout for the current layout
  t: 0,             // output frame shown
  playing: false,
  focus: null,      // env id of the strip
  grid: null,       // the layout to go back to after opening one env
  seq: 0,           // request counter: stale answers are dropped
};

function layoutFromControls() {
  const layout = {};
  const envs = $("envs").value.trim();
  if (envs) layout.envs = envs;
  const pick = $("pick").value;
  const k = parseInt($("k").value, 10);
  if (pick === "top") layout.top_k = k;
  if (pick === "bottom") layout.bottom_k = k;
  if (["terminated", "truncated", "succeeded"].includes(pick)) layout.only = pick;
  if ($("score").value) layout.score = $("score").value;
  if ($("order").value !== "given") layout.order = $("order").value;
  const cols = parseInt($("columns").value, 10);
  if (cols > 0) layout.columns = cols;
  layout.global_view = $("global-view").value;
  if ($("markers").checked && layout.global_view !== "none") layout.markers = true;
  if (!$("labels").checked) layout.label = null;
  return layout;
}

function query(extra) {
  const params = new URLSearchParams({ layout: JSON.stringify(layoutFromControls()), ...extra });
  return params.toString();
}

function showError(message) {
  const box = $("error");
  box.hidden = !message;
  box.textContent = message || "";
}

async function getJSON(url) {
  const response = await fetch(url);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

async function relayout() {
  const seq = ++state.seq;
  try {
    const plan = await getJSON("/api/layout?" + query({}));
    if (seq !== state.seq) return;
    state.plan = plan;
    showError(plan.warnings && plan.warnings.length ? plan.warnings.join("\n") : "");
    $("time").max = Math.max(0, plan.frames - 1);
    state.t = Math.min(state.t, plan.frames - 1);
    $("time").value = state.t;
    $("command").value = plan.command;
    if (state.focus === null || !plan.envs.includes(state.focus)) state.focus = plan.envs[0];
    await showFrame(state.t);
    drawStrip();
  } catch (err) {
    if (seq === state.seq) showError(String(err.message || err));
  }
}

function showFrame(t) {
  state.t = t;
  $("time").value = t;
  $("time-label").textContent = `${t + 1} / ${state.plan ? state.plan.frames : 0}`;
  const img = $("frame");
  $("busy").hidden = false;
  return new Promise((resolve) => {
    img.onload = () => { $("busy").hidden = true; img.dataset.t = String(t); resolve(); };
    img.onerror = async () => {
      $("busy").hidden = true;
      try { await getJSON(img.src); } catch (err) { showError(String(err.message || err)); }
      resolve();
    };
    img.src = "/api/frame?" + query({ t: String(t) });
  });
  // (the strip's cursor follows in drawStrip)
}

async function play() {
  state.playing = !state.playing;
  $("play").textContent = state.playing ? "❚❚" : "▶";
  const fps = state.plan ? state.plan.fps : 30;
  while (state.playing && state.plan) {
    const started = performance.now();
    const next = (state.t + 1) % state.plan.frames;
    await showFrame(next);
    drawStrip();
    const wait = 1000 / fps - (performance.now() - started);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
}

async function drawStrip() {
  const canvas = $("strip");
  const ctx = canvas.getContext("2d");
  canvas.width = canvas.clientWidth || 800;
  ctx.fillStyle = "#111";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (!state.plan || state.focus === null || state.focus === undefined) return;
  const env = state.focus;
  if (!state.strips) state.strips = {};
  let strip = state.strips[env];
  if (!strip) {
    try { strip = state.strips[env] = await getJSON(`/api/strip?env=${env}`); }
    catch (err) { showError(String(err.message || err)); return; }
  }
  const w = canvas.width, h = canvas.height, n = strip.reward.length;
  const finite = strip.reward.filter((v) => v !== null);
  const lo = Math.min(...finite, 0), hi = Math.max(...finite, 1e-9);
  const x = (i) => (i / Math.max(1, n - 1)) * (w - 1);
  ctx.strokeStyle = "#6cf";
  ctx.beginPath();
  strip.reward.forEach((v, i) => {
    if (v === null) return;
    const y = h - 6 - ((v - lo) / (hi - lo || 1)) * (h - 12);
    i ? ctx.lineTo(x(i), y) : ctx.moveTo(x(i), y);
  });
  ctx.stroke();
  for (const [i, kind] of strip.ends) {
    ctx.fillStyle = kind === "terminated" ? "#f55" : "#fc4";
    ctx.fillRect(x(i), 0, 2, 10);
  }
  const now = state.plan.store_frames[state.t] ?? 0;
  ctx.fillStyle = "#fff";
  ctx.fillRect(x(now * (n - 1) / Math.max(1, state.run.num_frames - 1)), 0, 1, h);
  $("strip-label").textContent =
    `env ${env}: reward ${lo.toFixed(2)}..${hi.toFixed(2)}, ${strip.ends.length} episode ends ` +
    "(red: terminated, yellow: truncated); click a tile to focus it, double-click to open it alone";
}

function tileAt(event) {
  const img = $("frame");
  if (!state.plan) return null;
  const scale = img.naturalWidth / img.clientWidth;
  const px = event.offsetX * scale, py = event.offsetY * scale;
  return state.plan.tiles.find((t) => px >= t.x && px < t.x + t.w && py >= t.y && py < t.y + t.h);
}

function openAlone(env) {
  state.grid = {
    envs: $("envs").value, pick: $("pick").value, columns: $("columns").value,
  };
  $("envs").value = String(env);
  $("pick").value = "all";
  $("columns").value = "1";
  $("back").hidden = false;
  relayout();
}

function backToGrid() {
  if (!state.grid) return;
  $("envs").value = state.grid.envs;
  $("pick").value = state.grid.pick;
  $("columns").value = state.grid.columns;
  state.grid = null;
  $("back").hidden = true;
  relayout();
}

async function start() {
  state.run = await getJSON("/api/run");
  document.title = `envreel view: ${state.run.name}`;
  $("run-name").textContent = state.run.name;
  $("run-facts").textContent =
    `${state.run.num_envs} envs × ${state.run.num_frames} frames at ${state.run.fps} fps` +
    (state.run.has_global ? ", global view" : "");
  for (const name of state.run.scores) {
    const opt = document.createElement("option");
    opt.value = opt.textContent = name;
    $("score").appendChild(opt);
  }
  if (state.run.has_global) $("global-view").value = "right";
  for (const id of ["envs", "k", "columns"]) $(id).addEventListener("change", relayout);
  for (const id of ["pick", "score", "order", "global-view", "markers", "labels"]) {
    $(id).addEventListener("change", relayout);
  }
  $("time").addEventListener("input", (e) => { showFrame(parseInt(e.target.value, 10)); drawStrip(); });
  $("play").addEventListener("click", play);
  $("back").addEventListener("click", backToGrid);
  $("copy").addEventListener("click", () => navigator.clipboard.writeText($("command").value));
  $("frame").addEventListener("click", (e) => {
    const tile = tileAt(e);
    if (tile) { state.focus = tile.env; drawStrip(); }
  });
  $("frame").addEventListener("dblclick", (e) => {
    const tile = tileAt(e);
    if (tile) openAlone(tile.env);
  });
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT" || e.target.tagName === "TEXTAREA") return;
    if (e.key === " ") { e.preventDefault(); play(); }
    if (e.key === "ArrowRight" && state.plan) { showFrame(Math.min(state.t + 1, state.plan.frames - 1)); drawStrip(); }
    if (e.key === "ArrowLeft") { showFrame(Math.max(state.t - 1, 0)); drawStrip(); }
  });
  await relayout();
  document.body.dataset.ready = "1";
}

start().catch((err) => showError(String(err.message || err)));
