// A trace as a waterfall: one row per span, bars on the trace's time axis, service colours,
// error spans red, a marker where a fault was injected. Click a span for its attributes.
// Fed by GET /api/traces/{id}; while spans are still arriving it polls and fills in.

export const SERVICE_COLORS = {
  "frontend": "#64748b",
  "api-gateway": "#4f46e5",
  "query-service": "#0891b2",
  "external-api-service": "#d97706",
  "validation-service": "#059669",
  "queue-service": "#7c3aed",
  "queue-worker": "#db2777",
  "processing-service": "#2563eb",
  "storage-service": "#65a30d",
};

export function serviceColor(name) {
  if (SERVICE_COLORS[name]) return SERVICE_COLORS[name];
  let hsh = 0;
  for (const c of name || "") hsh = (hsh * 31 + c.charCodeAt(0)) >>> 0;
  return `hsl(${hsh % 360} 55% 45%)`;
}

function fmtMs(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 10) return `${Math.round(ms)} ms`;
  return `${ms.toFixed(1)} ms`;
}

// The same trace in Coralogix: /api/config may carry a ready-made template (links are the
// stack's job); otherwise an Explore link on the team host, as the "Find my traces" card builds.
// Span fields per Coralogix's cx-cli spans skill: trace identifiers live under $d (traceID).
export function coralogixTraceLink(config, traceId) {
  const cx = config && config.coralogix;
  if (!cx || !cx.enabled) return null;
  if (cx.trace_url_template) return cx.trace_url_template.replace("{trace_id}", encodeURIComponent(traceId));
  if (!cx.team_url) return null;
  let host = "";
  try { host = new URL(/^https?:\/\//.test(cx.team_url) ? cx.team_url : `https://${cx.team_url}`).host; } catch { return null; }
  const query = `source spans | filter $d.traceID == '${traceId}'`;
  return `https://${host}/explore?dataset=spans&queryType=dataprime&query=${encodeURIComponent(query)}&duration=last-1-hour`;
}

/**
 * Show trace `traceId` in `container`. Returns a handle with stop().
 * deps: { api, h, config: () => config, fresh: bool (just asked: keep waiting while empty) }
 */
export function showTrace(container, traceId, deps) {
  const { api, h } = deps;
  let stopped = false;
  let timer = null;
  let selected = null;
  let lastCount = -1;
  const started = Date.now();
  const maxWaitMs = deps.maxWaitMs || 60000;

  container.replaceChildren(
    h("div", { class: "wf-head" },
      h("h3", { class: "wf-title" }, "Trace ", h("code", { class: "wf-id", text: traceId })),
      h("span", { class: "wf-state pill", role: "status", "aria-live": "polite", text: "waiting for spans…" })),
    h("p", { class: "wf-summary muted small" }),
    h("div", { class: "wf-legend", "aria-label": "Services" }),
    h("div", { class: "wf-body" }, h("p", { class: "muted small wf-wait" }, h("span", { class: "spinner", "aria-hidden": "true" }), " waiting for spans…")),
    h("div", { class: "wf-detail", hidden: true }),
  );
  const link = coralogixTraceLink(deps.config && deps.config(), traceId);
  if (link) {
    container.querySelector(".wf-head").append(h("a", {
      class: "btn small", href: link, target: "_blank", rel: "noopener noreferrer", "data-cx-trace": traceId,
    }, "Open in Coralogix ↗"));
  }
  const stateEl = container.querySelector(".wf-state");

  async function load() {
    if (stopped) return;
    let data = null;
    try {
      data = await api(`/api/traces/${encodeURIComponent(traceId)}`);
    } catch (err) {
      if (stopped) return;
      const waiting = deps.fresh && err.status === 404 && Date.now() - started < 15000;
      if (!waiting) {
        stateEl.textContent = err.status === 404 ? "not found" : "error";
        stateEl.className = "wf-state pill pill-failed";
        container.querySelector(".wf-body").replaceChildren(h("p", { class: "alert error wf-error", role: "alert", text: err.message }));
        return;
      }
    }
    if (stopped) return;
    if (data && data.spans && data.spans.length) {
      if (data.span_count !== lastCount || data.state === "complete") render(data);
      lastCount = data.span_count;
    }
    const state = data ? data.state : "waiting";
    stateEl.textContent = state === "complete" ? "complete" : state === "arriving" ? "spans arriving…" : "waiting for spans…";
    stateEl.className = `wf-state pill pill-${state === "complete" ? "done" : "processing"}`;
    if (state === "complete") return;
    if (Date.now() - started > maxWaitMs) {
      stateEl.textContent = data && data.spans && data.spans.length ? "partial" : "no spans yet";
      return;
    }
    timer = setTimeout(load, 1000);
  }

  function render(t) {
    const total = Math.max(t.duration_ms, 0.001);
    container.dataset.services = t.services.join(",");
    container.dataset.spanCount = String(t.span_count);
    container.querySelector(".wf-summary").textContent =
      `${t.span_count} spans · ${t.services.length} services · ${fmtMs(t.duration_ms)}` +
      (t.error_count ? ` · ${t.error_count} error span${t.error_count > 1 ? "s" : ""}` : "") +
      (t.faults.length ? ` · fault injected: ${t.faults.join(", ")}` : "");
    container.querySelector(".wf-legend").replaceChildren(...t.services.map((s) =>
      h("span", { class: "wf-chip", "data-service": s },
        swatch(h, s), s)));
    const ticks = h("div", { class: "wf-axis", "aria-hidden": "true" });
    for (const f of [0, 0.25, 0.5, 0.75, 1]) {
      const tick = h("span", { class: "wf-tick", text: fmtMs(total * f) });
      tick.style.left = `${f * 100}%`;
      ticks.append(tick);
    }
    const rows = t.spans.map((s) => {
      const bar = h("span", { class: `wf-bar${s.error ? " wf-error-bar" : ""}` });
      bar.style.left = `${(s.start_ms / total) * 100}%`;
      bar.style.width = `${Math.max((s.duration_ms / total) * 100, 0.4)}%`;
      if (!s.error) bar.style.background = serviceColor(s.service);
      const track = h("span", { class: "wf-track" }, bar);
      for (const e of s.events.filter((ev) => ev.name === "fault.injected")) {
        const mark = h("span", { class: "wf-fault", title: `fault.injected ${e.attributes["fault.kind"] || ""}`, text: "⚡ fault" });
        const pct = Math.min(Math.max((e.at_ms / total) * 100, 0), 100);
        mark.style.left = `${pct}%`;
        if (pct > 70) mark.classList.add("wf-fault-left");  // stay inside the track
        track.append(mark);
      }
      const label = h("span", { class: "wf-label" },
        swatch(h, s.service),
        h("span", { class: "wf-svc", text: s.service }),
        h("span", { class: "wf-name", text: s.name }));
      label.style.paddingLeft = `${Math.min(s.depth, 12) * 0.6}rem`;
      const row = h("button", {
        type: "button", class: `wf-row${s.error ? " is-error" : ""}${s.fault_injected ? " has-fault" : ""}`,
        "data-span-id": s.span_id, "data-service": s.service, "aria-expanded": "false",
        "aria-label": `${s.service} ${s.name}, ${fmtMs(s.duration_ms)}${s.error ? ", error" : ""}${s.fault_injected ? ", fault injected" : ""}`,
        onclick: () => select(s, row),
      }, label, track, h("span", { class: "wf-dur", text: fmtMs(s.duration_ms) }));
      if (selected === s.span_id) row.setAttribute("aria-expanded", "true");
      return row;
    });
    container.querySelector(".wf-body").replaceChildren(ticks, h("div", { class: "wf-rows" }, rows));
    if (selected) {
      const s = t.spans.find((x) => x.span_id === selected);
      if (s) detail(s);
    }
  }

  function select(s, row) {
    selected = selected === s.span_id ? null : s.span_id;
    for (const r of container.querySelectorAll(".wf-row")) r.setAttribute("aria-expanded", String(r === row && !!selected));
    if (!selected) { container.querySelector(".wf-detail").hidden = true; return; }
    detail(s);
  }

  function detail(s) {
    const box = container.querySelector(".wf-detail");
    const kv = (obj) => h("dl", { class: "wf-kv" }, Object.entries(obj || {}).sort().map(([k, v]) =>
      h("div", {}, h("dt", { text: k }), h("dd", { text: typeof v === "object" ? JSON.stringify(v) : String(v) }))));
    box.replaceChildren(
      h("div", { class: "card-head" },
        h("h4", {}, swatch(h, s.service), `${s.service} · ${s.name}`),
        h("button", { type: "button", class: "btn small ghost", onclick: () => { selected = null; box.hidden = true; } }, "Close")),
      h("p", { class: "muted small mono", text: `span ${s.span_id} · ${s.kind} · starts at ${fmtMs(s.start_ms)} · ${fmtMs(s.duration_ms)}${s.error ? ` · ERROR ${s.status_message || ""}` : ""}` }),
      h("h5", { text: "Attributes" }), kv(s.attributes),
      s.events.length ? h("h5", { text: "Events" }) : null,
      s.events.length ? h("ul", { class: "wf-events" }, s.events.map((e) =>
        h("li", { class: e.name === "fault.injected" ? "wf-event-fault" : "" },
          h("strong", { text: e.name }), ` at ${fmtMs(e.at_ms)} `, kv(e.attributes)))) : null,
      h("h5", { text: "Resource" }), kv(s.resource),
    );
    box.hidden = false;
    box.dataset.spanId = s.span_id;
  }

  load();
  return { stop() { stopped = true; if (timer) clearTimeout(timer); } };
}

function swatch(h, service) {
  const el = h("span", { class: "wf-swatch", "aria-hidden": "true" });
  el.style.background = serviceColor(service);
  return el;
}
