/// The admin port's live page (`GET /` on `--admin-listen`): one self-contained HTML file, compiled
/// into the binary so it works without files beside it and loads nothing from elsewhere (no outside
/// scripts, styles or fonts; its Content-Security-Policy forbids them). It polls this port's
/// `/metrics` and `/sessions` once a second, draws the last two minutes, and ends a session with
/// `DELETE /sessions/ID`. It holds no data itself, so it is served without the admin token; it asks
/// for the token once and keeps it in the tab's session storage.
enum AdminPage {
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Ferry: live sessions</title>
<style>
:root { color-scheme: light dark; --fg: #1d2330; --muted: #667085; --bg: #f7f8fa; --card: #fff; --line: #e4e7ec;
  --a: #2f6fde; --b: #16a34a; --c: #d97706; --d: #dc2626; --e: #7c3aed; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e9ef; --muted: #98a2b3; --bg: #111418; --card: #1a1f26; --line: #2a313b; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; align-items: baseline; padding: 1rem 1.25rem .25rem; }
h1 { font-size: 1.2rem; margin: 0; }
#status { color: var(--muted); }
main { padding: .5rem 1.25rem 1.5rem; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: .75rem; margin-bottom: 1rem; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: .6rem .75rem; }
.card h2 { font-size: .8rem; font-weight: 600; margin: 0 0 .25rem; color: var(--muted); text-transform: uppercase; letter-spacing: .03em; }
.card .now { font-size: 1.25rem; font-weight: 600; }
svg { display: block; width: 100%; height: 64px; }
.legend { display: flex; flex-wrap: wrap; gap: .25rem .75rem; font-size: .75rem; color: var(--muted); min-height: 1em; }
.legend i { display: inline-block; width: .6rem; height: .6rem; border-radius: 2px; margin-right: .25rem; vertical-align: -1px; }
table { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { font-size: .75rem; color: var(--muted); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:last-child td { border-bottom: 0; }
.scroll { overflow-x: auto; }
button { font: inherit; border: 1px solid var(--d); color: var(--d); background: transparent; border-radius: 6px; padding: .1rem .6rem; cursor: pointer; }
button:hover { background: var(--d); color: #fff; }
#empty { color: var(--muted); padding: .75rem 0; }
#login { display: none; max-width: 28rem; }
#login input { font: inherit; width: 100%; padding: .4rem; margin: .4rem 0; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--fg); }
#login button { border-color: var(--a); color: var(--a); }
</style>
</head>
<body>
<header><h1>Ferry: live sessions</h1><span id="status">connecting…</span></header>
<main>
<form id="login" class="card"><h2>Admin token</h2>
<div>This admin port needs the token from <code>--admin-token</code>. It is kept in this tab only.</div>
<input id="token" type="password" autocomplete="off" aria-label="admin token"><button type="submit">Use it</button></form>
<section class="charts">
<div class="card"><h2>Sessions by route</h2><div class="now" id="now-sessions">0</div><svg id="chart-sessions" viewBox="0 0 120 64" preserveAspectRatio="none"></svg><div class="legend" id="legend-sessions"></div></div>
<div class="card"><h2>Handshakes per second</h2><div class="now" id="now-handshakes">0</div><svg id="chart-handshakes" viewBox="0 0 120 64" preserveAspectRatio="none"></svg><div class="legend" id="legend-handshakes"></div></div>
<div class="card"><h2>Bytes per second</h2><div class="now" id="now-bytes">0</div><svg id="chart-bytes" viewBox="0 0 120 64" preserveAspectRatio="none"></svg><div class="legend" id="legend-bytes"></div></div>
<div class="card"><h2>Close codes, last 5 minutes</h2><div class="now" id="now-closes">0</div><svg id="chart-closes" viewBox="0 0 120 64" preserveAspectRatio="none"></svg><div class="legend" id="legend-closes"></div></div>
</section>
<div class="scroll"><table><thead><tr><th>id</th><th>client</th><th>route</th><th>target</th><th>token</th><th>age</th><th class="num">to backend</th><th class="num">to client</th><th>idle</th><th></th></tr></thead>
<tbody id="sessions"></tbody></table></div>
<div id="empty">No live sessions.</div>
</main>
<script>
"use strict";
// Polls this port's /metrics and /sessions once a second and draws the last two minutes. Everything
// shown is inserted as text, never as markup: routes, targets and addresses come from clients.
const WINDOW = 120, COLORS = ["var(--a)", "var(--b)", "var(--c)", "var(--d)", "var(--e)"];
const history = { sessions: [], handshakes: [], bytes: [], closes: [] };
let previous = null, token = sessionStorage.getItem("ferry-admin-token") || "";
const $ = (id) => document.getElementById(id);

function headers() { return token ? { Authorization: "Bearer " + token } : {}; }

async function get(path) {
  const response = await fetch(path, { headers: headers(), cache: "no-store" });
  if (response.status === 401) { $("login").style.display = "block"; throw new Error("the admin token is needed"); }
  if (!response.ok) throw new Error(path + ": " + response.status + " " + (await response.text()).trim());
  return response;
}

function parseMetrics(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!match || line.startsWith("#")) continue;
    const labels = {};
    for (const pair of (match[2] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2];
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

function sum(samples, name, key) {
  const out = {};
  for (const s of samples) if (s.name === name) { const k = key ? key(s.labels) : ""; out[k] = (out[k] || 0) + s.value; }
  return out;
}

function liveBytes(ended, sessions) {
  const out = { to_backend: ended.to_backend || 0, to_client: ended.to_client || 0 };
  for (const s of sessions) { out.to_backend += s.bytes_to_backend; out.to_client += s.bytes_to_client; }
  return out;
}

function rate(now, before, seconds) {
  const out = {};
  for (const k of Object.keys(now)) out[k] = Math.max(0, (now[k] - ((before || {})[k] || 0)) / seconds);
  return out;
}

function push(series, point) { series.push(point); while (series.length > WINDOW) series.shift(); }

function human(n) {
  const units = ["", " k", " M", " G", " T"]; let i = 0;
  while (Math.abs(n) >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return (i ? n.toFixed(1) : Math.round(n)) + units[i];
}

function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return s + " s"; if (s < 3600) return Math.floor(s / 60) + " min"; return Math.floor(s / 3600) + " h " + Math.floor(s % 3600 / 60) + " min";
}

function draw(id, series, keys, label = (key) => key || "all") {
  const svg = $("chart-" + id), legend = $("legend-" + id);
  const max = Math.max(1, ...series.flatMap((p) => keys.map((k) => p[k] || 0)));
  svg.replaceChildren(baseline());
  legend.replaceChildren();
  keys.slice(0, COLORS.length).forEach((key, i) => {
    // The first half minute fills the width; after that the window grows to two minutes.
    const span = Math.max(30, series.length) - 1;
    const points = series.map((p, x) => (120 - (series.length - 1 - x) * 120 / span).toFixed(1) + "," + (62 - 58 * (p[key] || 0) / max).toFixed(1)).join(" ");
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", points); line.setAttribute("fill", "none");
    line.setAttribute("stroke", COLORS[i]); line.setAttribute("stroke-width", "1.5"); line.setAttribute("vector-effect", "non-scaling-stroke");
    svg.append(line);
    const item = document.createElement("span"), swatch = document.createElement("i");
    swatch.style.background = COLORS[i]; item.append(swatch, label(key)); legend.append(item);
  });
}

// The chart's floor, so an empty chart still reads as one.
function baseline() {
  const line = document.createElementNS("http://www.w3.org/2000/svg", "line");
  line.setAttribute("x1", 0); line.setAttribute("x2", 120); line.setAttribute("y1", 62.5); line.setAttribute("y2", 62.5);
  line.setAttribute("stroke", "var(--line)"); line.setAttribute("vector-effect", "non-scaling-stroke");
  return line;
}

function drawBars(id, counts) {
  const svg = $("chart-" + id), legend = $("legend-" + id), keys = Object.keys(counts).sort();
  const max = Math.max(1, ...Object.values(counts)), width = 120 / Math.max(1, keys.length);
  svg.replaceChildren(baseline()); legend.replaceChildren();
  keys.forEach((key, i) => {
    const bar = document.createElementNS("http://www.w3.org/2000/svg", "rect"), h = 58 * counts[key] / max;
    bar.setAttribute("x", i * width + 1); bar.setAttribute("width", Math.max(1, width - 2));
    bar.setAttribute("y", 62 - h); bar.setAttribute("height", h); bar.setAttribute("fill", COLORS[i % COLORS.length]);
    svg.append(bar);
    const item = document.createElement("span"), swatch = document.createElement("i");
    swatch.style.background = COLORS[i % COLORS.length]; item.append(swatch, key + ": " + Math.round(counts[key])); legend.append(item);
  });
}

function cell(row, text, className) { const td = document.createElement("td"); td.textContent = text; if (className) td.className = className; row.append(td); }

function showSessions(listing) {
  const body = $("sessions"), now = Date.now();
  body.replaceChildren();
  for (const s of listing.sessions) {
    const row = document.createElement("tr");
    row.dataset.id = s.id;
    cell(row, s.id); cell(row, s.client + (s.via ? " via " + s.via : "")); cell(row, s.route); cell(row, s.target);
    cell(row, s.token || (s.client_cert_cn ? "cert " + s.client_cert_cn : "")); cell(row, duration(now - Date.parse(s.started)));
    cell(row, human(s.bytes_to_backend) + "B", "num"); cell(row, human(s.bytes_to_client) + "B", "num");
    cell(row, duration(now - Date.parse(s.last_activity)));
    const td = document.createElement("td"), end = document.createElement("button");
    end.textContent = "End"; end.title = "Close this session (1008, closed by administrator)";
    end.addEventListener("click", () => endSession(s.id));
    td.append(end); row.append(td); body.append(row);
  }
  $("empty").style.display = listing.sessions.length ? "none" : "block";
}

async function endSession(id) {
  try {
    const response = await fetch("/sessions/" + encodeURIComponent(id), { method: "DELETE", headers: headers() });
    $("status").textContent = response.ok ? "session " + id + " closed" : "could not close " + id + ": " + response.status;
  } catch (error) { $("status").textContent = String(error); }
  tick();
}

async function tick() {
  try {
    const [metricsText, listing] = await Promise.all([get("/metrics").then((r) => r.text()), get("/sessions").then((r) => r.json())]);
    const samples = parseMetrics(metricsText), time = Date.now();
    const current = {
      time,
      opened: sum(samples, "ferry_sessions_total"),
      refused: sum(samples, "ferry_handshakes_refused_total", (l) => l.status),
      // /metrics counts a session's bytes when it ends; the live ones come from /sessions.
      bytes: liveBytes(sum(samples, "ferry_bytes_total", (l) => l.direction), listing.sessions),
      closes: sum(samples, "ferry_close_codes_total", (l) => l.code),
    };
    const byRoute = {};
    for (const s of listing.sessions) byRoute[s.route] = (byRoute[s.route] || 0) + 1;
    push(history.sessions, byRoute);
    if (previous) {
      const seconds = Math.max(0.001, (time - previous.time) / 1000);
      const handshakes = rate(current.refused, previous.refused, seconds);
      handshakes["101"] = rate(current.opened, previous.opened, seconds)[""] || 0;
      push(history.handshakes, handshakes);
      push(history.bytes, rate(current.bytes, previous.bytes, seconds));
    }
    history.closes.push({ time, closes: current.closes });
    while (history.closes.length > 1 && time - history.closes[0].time > 300000) history.closes.shift();
    previous = current;

    const routes = [...new Set(history.sessions.flatMap(Object.keys))].sort();
    draw("sessions", history.sessions, routes);
    $("now-sessions").textContent = listing.count;
    const statuses = [...new Set(history.handshakes.flatMap(Object.keys))].sort();
    draw("handshakes", history.handshakes, statuses, (key) => key === "101" ? "101 opened" : key + " refused");
    const last = history.handshakes[history.handshakes.length - 1] || {};
    $("now-handshakes").textContent = human(Object.values(last).reduce((a, b) => a + b, 0)) + "/s";
    draw("bytes", history.bytes, ["to_backend", "to_client"], (key) => key.replace("_", " "));
    const lastBytes = history.bytes[history.bytes.length - 1] || {};
    $("now-bytes").textContent = human((lastBytes.to_backend || 0) + (lastBytes.to_client || 0)) + "B/s";
    const closes = rate(current.closes, history.closes[0].closes, 1);
    for (const k of Object.keys(closes)) if (!closes[k]) delete closes[k];
    drawBars("closes", closes);
    $("now-closes").textContent = Object.values(closes).reduce((a, b) => a + b, 0);
    showSessions(listing);
    $("login").style.display = "none";
    $("status").textContent = "updated " + new Date(time).toLocaleTimeString();
    document.body.dataset.ready = "true";
  } catch (error) {
    $("status").textContent = String(error.message || error);
  }
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  token = $("token").value.trim();
  sessionStorage.setItem("ferry-admin-token", token);
  tick();
});
tick();
setInterval(tick, 1000);
</script>
</body>
</html>
"""#
}
