// Status page: live RED charts (requests/s, error ratio, p95) per service, last 15 minutes,
// from GET /api/telemetry/red. A sparkline tile per service and one large chart for the chosen
// service; fault start/clear drawn on the time axis with kind and target. Polls every 3 s
// only while the Status page is shown and the tab is visible: no page, no polling.
// uPlot (vendor/uplot, MIT) is loaded as a classic script and found on window.

import { serviceColor } from "./waterfall.js";

const REFRESH_MS = 3000;
const SELECT_KEY = "workshop.redService";

function fmtNum(v, unit) {
  if (v === null || v === undefined) return "—";
  if (unit === "%") return `${(v * 100).toFixed(v > 0 && v < 0.01 ? 2 : 1)} %`;
  if (unit === "ms") return v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v >= 10 ? Math.round(v) : v.toFixed(1)} ms`;
  return v >= 10 ? `${Math.round(v)}` : v.toFixed(2);
}

// The tile's figures: the newest bin that saw requests, if it is recent; else idle.
const RECENT_S = 30;
function latest(t, s) {
  for (let i = s.rps.length - 1; i >= 0; i--) {
    if (s.rps[i] > 0) {
      if (t[t.length - 1] - t[i] > RECENT_S) break;
      return { rps: s.rps[i], err: s.error_ratio[i], p95: s.p95_ms[i] };
    }
  }
  return { rps: 0, err: null, p95: null };
}

function clockLabel(ts) {
  return new Date(ts * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/** Fault bands: shaded from start to clear (or to now), dashed edges, "kind → target" label. */
function faultPlugin(state, { labels }) {
  return {
    hooks: {
      draw: [(u) => {
        const { ctx } = u;
        const { left, top, width, height } = u.bbox;
        ctx.save();
        ctx.beginPath();
        ctx.rect(left, top, width, height);
        ctx.clip();
        const bad = getComputedStyle(document.documentElement).getPropertyValue("--bad").trim() || "#c0262d";
        for (const f of state.faults) {
          const x0 = u.valToPos(f.start, "x", true);
          const x1 = u.valToPos(f.end ?? state.now, "x", true);
          ctx.fillStyle = "rgba(192, 38, 45, 0.08)";
          ctx.fillRect(x0, top, Math.max(x1 - x0, 1), height);
          ctx.strokeStyle = bad;
          ctx.lineWidth = devicePixelRatio;
          ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
          for (const x of f.end ? [x0, x1] : [x0]) {
            ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + height); ctx.stroke();
          }
          if (labels) {
            ctx.setLineDash([]);
            ctx.fillStyle = bad;
            ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
            ctx.textBaseline = "top";
            const pad = 4 * devicePixelRatio;
            // Near the right edge the label goes to the left of its line.
            const put = (text, x, y) => {
              const w = ctx.measureText(text).width;
              ctx.textAlign = x + pad + w > left + width ? "right" : "left";
              ctx.fillText(text, ctx.textAlign === "right" ? x - pad : x + pad, y);
            };
            put(`▲ ${f.kind} → ${f.target}`, x0, top + 3 * devicePixelRatio);
            if (f.end) put("▼ cleared", x1, top + 16 * devicePixelRatio);
          }
        }
        ctx.restore();
      }],
    },
  };
}

export function initRed({ api, h, identity, $ }) {
  const state = { t: [], services: {}, faults: [], now: Date.now() / 1000, window: 900, timer: null, data: null };
  const sparks = {};
  let big = [];
  let selected = localStorage.getItem(SELECT_KEY) || "api-gateway";
  const grid = $("red-grid");
  const mine = $("red-mine");

  function xRange() { return [state.now - state.window, state.now]; }

  function sparkOpts(width) {
    return {
      width, height: 42, pxAlign: false,
      cursor: { show: false }, legend: { show: false }, select: { show: false },
      scales: { x: { time: true, range: xRange }, y: { range: (u, min, max) => [0, Math.max(max || 0, 1)] } },
      axes: [{ show: false }, { show: false }],
      series: [{}, { stroke: "", width: 1.5, spanGaps: true, points: { show: false } }],
      plugins: [faultPlugin(state, { labels: false })],
    };
  }

  function tile(service) {
    const color = serviceColor(service);
    const el = h("button", {
      type: "button", class: "red-tile", "data-service": service, "aria-pressed": String(service === selected),
      onclick: () => choose(service),
    },
    h("span", { class: "red-tile-head" }, h("span", { class: "wf-swatch", "aria-hidden": "true" }), h("span", { class: "red-svc", text: service })),
    h("span", { class: "red-figs" },
      h("span", { class: "red-fig" }, h("span", { class: "red-k", text: "req/s" }), h("span", { class: "red-v red-rps", text: "—" })),
      h("span", { class: "red-fig" }, h("span", { class: "red-k", text: "errors" }), h("span", { class: "red-v red-err", text: "—" })),
      h("span", { class: "red-fig" }, h("span", { class: "red-k", text: "p95" }), h("span", { class: "red-v red-p95", text: "—" }))),
    h("span", { class: "red-spark", "aria-hidden": "true" }));
    el.querySelector(".wf-swatch").style.background = color;
    return el;
  }

  function choose(service) {
    selected = service;
    localStorage.setItem(SELECT_KEY, service);
    for (const t of grid.querySelectorAll(".red-tile")) t.setAttribute("aria-pressed", String(t.dataset.service === service));
    $("red-select").value = service;
    drawBig();
  }

  function ensureTiles(services) {
    const names = Object.keys(services);
    if (grid.dataset.services === names.join(",")) return;
    grid.dataset.services = names.join(",");
    grid.replaceChildren(...names.map(tile));
    for (const k of Object.keys(sparks)) { sparks[k].destroy(); delete sparks[k]; }
    const sel = $("red-select");
    sel.replaceChildren(...names.map((n) => h("option", { value: n, text: n })));
    if (!names.includes(selected)) selected = names[0];
    sel.value = selected;
  }

  function drawTiles() {
    for (const [service, s] of Object.entries(state.services)) {
      const el = grid.querySelector(`.red-tile[data-service="${service}"]`);
      if (!el) continue;
      const { rps, err, p95 } = latest(state.t, s);
      el.querySelector(".red-rps").textContent = fmtNum(rps);
      el.querySelector(".red-err").textContent = fmtNum(err, "%");
      el.querySelector(".red-p95").textContent = fmtNum(p95, "ms");
      el.dataset.rps = rps ?? "";
      el.dataset.errorRatio = err ?? "";
      el.dataset.p95 = p95 ?? "";
      el.classList.toggle("has-errors", (err || 0) > 0.05);
      const host = el.querySelector(".red-spark");
      const width = Math.max(host.clientWidth, 60);
      const data = [state.t, s.p95_ms];
      if (!sparks[service]) {
        const opts = sparkOpts(width);
        opts.series[1].stroke = serviceColor(service);
        opts.series[1].fill = `${serviceColor(service)}22`;
        sparks[service] = new window.uPlot(opts, data, host);
      } else {
        if (sparks[service].width !== width) sparks[service].setSize({ width, height: 42 });
        sparks[service].setData(data);
      }
    }
  }

  function bigWidth() { return Math.max($("red-big").clientWidth, 200); }

  function drawBig() {
    const s = state.services[selected];
    const host = $("red-big");
    $("red-big-title").textContent = selected || "";
    if (!s) { host.replaceChildren(); big = []; return; }
    const color = serviceColor(selected);
    const panels = [
      ["requests/s", s.rps, (v) => fmtNum(v)],
      ["error ratio", s.error_ratio, (v) => fmtNum(v, "%")],
      ["p95 latency", s.p95_ms, (v) => fmtNum(v, "ms")],
    ];
    if (big.length !== 3 || host.dataset.service !== selected) {
      for (const u of big) u.destroy();
      host.replaceChildren();
      host.dataset.service = selected;
      const width = bigWidth();
      const cursorSync = { key: "red" };
      big = panels.map(([label, values, fmt], i) => {
        const box = h("div", { class: "red-panel", "data-panel": ["rps", "error_ratio", "p95_ms"][i] }, h("div", { class: "red-panel-label", text: label }));
        host.append(box);
        return new window.uPlot({
          width, height: i === 2 ? 170 : 110,
          cursor: { sync: cursorSync, drag: { x: false, y: false } },
          legend: { show: true, live: true },
          scales: { x: { time: true, range: xRange }, y: { range: (u, min, max) => [0, i === 1 ? Math.max(max || 0, 0.05) : Math.max((max || 0) * 1.15, i === 2 ? 10 : 1)] } },
          axes: [
            { stroke: "currentColor", grid: { stroke: "rgba(128,128,128,.15)" }, ticks: { stroke: "rgba(128,128,128,.3)" }, show: i === 2 },
            { stroke: "currentColor", grid: { stroke: "rgba(128,128,128,.15)" }, ticks: { stroke: "rgba(128,128,128,.3)" }, size: 66, values: (u, vals) => vals.map((v) => fmt(v)) },
          ],
          series: [
            { value: (u, v) => (v ? clockLabel(v) : "—") },
            { label, stroke: i === 1 ? "#c0262d" : color, fill: i === 1 ? "rgba(192,38,45,.12)" : `${color}1f`, width: 2, spanGaps: i !== 0, points: { show: false }, value: (u, v) => fmt(v) },
          ],
          plugins: [faultPlugin(state, { labels: i === 2 })],
        }, [state.t, values], box);
      });
    } else {
      big.forEach((u, i) => u.setData([state.t, panels[i][1]]));
    }
  }

  function drawFaults() {
    const box = $("red-faults");
    if (!state.faults.length) { box.replaceChildren(h("li", { class: "muted small", text: "No fault in this window." })); return; }
    box.replaceChildren(...state.faults.map((f) => h("li", {
      class: `red-fault ${f.end ? "is-cleared" : "is-active"}`, "data-fault-id": f.id, "data-kind": f.kind, "data-target": f.target,
      "data-state": f.end ? "ended" : "active",
    },
    h("span", { class: "red-fault-mark", "aria-hidden": "true", text: "▲" }),
    h("span", {}, `${clockLabel(f.start)} `, h("strong", { text: f.kind }), " → ", h("code", { text: f.target }),
      f.scope !== "all" ? ` (${f.scope} ${f.scope_value})` : ""),
    h("span", { class: "muted small", text: f.end ? ` · ▼ ${f.ended_by} ${clockLabel(f.end)}` : " · active" }))));
  }

  async function refresh() {
    const wantMine = mine.checked && identity.name;
    try {
      const data = await api(`/api/telemetry/red?window=${state.window}${wantMine ? "&mine=true" : ""}`);
      Object.assign(state, { t: data.t, services: data.services, faults: data.faults, now: data.now, data });
      $("red-error").hidden = true;
      ensureTiles(data.services);
      drawTiles();
      drawBig();
      drawFaults();
      const total = Object.values(data.services).reduce((n, s) => n + s.rps.reduce((a, b) => a + b, 0), 0);
      $("red-note").textContent = data.loading ? "reading the collector's span files…"
        : total === 0 ? (wantMine ? `No requests from “${identity.name}” in the last 15 minutes.` : "No requests in the last 15 minutes: ask a question or run some load.")
          : `${wantMine ? `only ${identity.name}'s traffic · ` : ""}${data.step} s bins · newest ${Math.round(data.settle_seconds)} s still arriving · updated ${new Date().toLocaleTimeString()}`;
      $("red-card").dataset.updated = String(Date.now());
    } catch (err) {
      const box = $("red-error");
      box.textContent = `Charts unavailable: ${err.message}`;
      box.hidden = false;
    }
  }

  function tick() {
    if (!document.hidden) refresh();
    state.timer = setTimeout(tick, REFRESH_MS);
  }

  function syncMine() {
    const name = identity.name;
    mine.disabled = !name;
    $("red-mine-label").title = name ? `Only requests carrying baggage workshop.attendee=${name}` : "Set your name first";
    if (!name) mine.checked = false;
  }

  mine.addEventListener("change", () => refresh());
  $("red-select").addEventListener("change", (ev) => choose(ev.target.value));
  window.addEventListener("resize", () => {
    if (!state.timer) return;
    for (const u of big) u.setSize({ width: bigWidth(), height: u.height });
    drawTiles();
  });

  return {
    start() {
      syncMine();
      if (state.timer) clearTimeout(state.timer);
      tick();
    },
    stop() {
      if (state.timer) clearTimeout(state.timer);
      state.timer = null;
    },
  };
}
