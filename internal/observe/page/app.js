// The status page: polls status.json and renders it. No framework, no
// build step; everything comes from this origin.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : String(c));
  return e;
}

function time(t) {
  const d = new Date(t);
  return isNaN(d) ? "" : d.toLocaleTimeString();
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function renderHealth(s) {
  const h = $("health");
  h.textContent = s.health.status;
  h.className = "badge " + s.health.status;
  $("hash").textContent = s.hash ? "rules sha256 " + s.hash.slice(0, 12) : "no rules";
  $("updated").textContent = "updated " + time(s.now);
  $("problems-box").hidden = s.health.problems.length === 0;
  $("problems").replaceChildren(...s.health.problems.map((p) => el("li", {}, p)));
}

function renderCounters(s) {
  const names = Object.keys(s.counters).sort();
  $("counters").replaceChildren(...names.map((n) =>
    el("div", { "data-counter": n }, el("dt", {}, n.replaceAll("_", " ")), el("dd", {}, s.counters[n].toLocaleString()))));
}

function renderGroups(s) {
  $("groups").replaceChildren(...s.groups.map((g) => {
    const rows = g.rules.map((r) => el("tr", { "data-rule": r.number },
      el("td", { class: "num" }, r.number || "–"), el("td", {}, r.dir),
      el("td", {}, el("code", {}, r.text)), el("td", { class: "num hits" }, r.hits.toLocaleString())));
    return el("div", { class: "group", "data-group": g.name },
      el("h3", {}, g.name + " ", el("span", { class: "muted" }, g.accepted.toLocaleString() + " accepted")),
      el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "#"), el("th", {}, "dir"), el("th", {}, "rule"), el("th", {}, "hits"))),
        el("tbody", {}, ...rows)));
  }));
}

// renderChart draws the per-second rates as two polylines in a 600x160
// box, scaled to the peak, the newest sample on the right; the x axis
// spans at least a minute, at most the five the series keeps.
function renderChart(s) {
  const a = s.rates.accepted, d = s.rates.dropped;
  const W = 600, H = 160, n = Math.max(60, a.length);
  const peak = Math.max(1, ...a, ...d);
  const pts = (xs) => xs.map((v, i) => {
    const x = W - (xs.length - 1 - i) * (W / n);
    const y = H - 4 - (v / peak) * (H - 12);
    return x.toFixed(1) + "," + y.toFixed(1);
  }).join(" ");
  $("line-accepted").setAttribute("points", pts(a));
  $("line-dropped").setAttribute("points", pts(d));
  const grid = [];
  for (let i = 1; i < 4; i++) {
    const y = (H * i / 4).toFixed(1);
    grid.push(document.createElementNS("http://www.w3.org/2000/svg", "line"));
    const g = grid[grid.length - 1];
    g.setAttribute("x1", 0); g.setAttribute("x2", W); g.setAttribute("y1", y); g.setAttribute("y2", y);
  }
  $("grid").replaceChildren(...grid);
  const last = (xs) => (xs.length ? xs[xs.length - 1] : 0);
  $("rate-accepted").textContent = last(a).toFixed(0);
  $("rate-dropped").textContent = last(d).toFixed(0);
  $("peak").textContent = peak.toFixed(0);
  $("chart").setAttribute("data-points", a.length);
}

function renderDrops(s) {
  fill($("drops").tBodies[0], s.drops.map((x) => el("tr", {},
    el("td", {}, time(x.time)), el("td", {}, x.dir), el("td", { class: "peer" }, x.peer || "–"),
    el("td", {}, x.proto), el("td", { class: "num" }, x.port), el("td", {}, x.reason))));
}

function renderReloads(s) {
  fill($("reloads").tBodies[0], s.reloads.map((r) => el("tr", { class: r.result },
    el("td", {}, time(r.time) + (r.first ? " (start)" : "")), el("td", {}, r.result),
    el("td", {}, el("code", {}, (r.hash || "").slice(0, 12))), el("td", { class: "num" }, r.duration_ms.toFixed(1) + " ms"),
    el("td", {}, r.error || ""))));
}

async function refresh() {
  try {
    const res = await fetch("status.json", { cache: "no-store" });
    if (!res.ok) throw new Error(res.status + " " + res.statusText);
    const s = await res.json();
    renderHealth(s);
    renderChart(s);
    renderCounters(s);
    renderGroups(s);
    renderDrops(s);
    renderReloads(s);
    document.body.setAttribute("data-loaded", "1");
  } catch (err) {
    $("health").textContent = "unreachable";
    $("health").className = "badge failing";
    $("updated").textContent = String(err);
  }
}

refresh();
setInterval(refresh, 2000);
