// DataPrime Assistant UI: hash routing over one page, same-origin /api calls.
// Everything that comes from the API is rendered with textContent (never innerHTML).

import { highlightInto } from "./highlight.js";
import { initRed } from "./charts.js";
import { showTrace } from "./waterfall.js";

const $ = (id) => document.getElementById(id);
const NAME_KEY = "workshop.attendee";
const TOKEN_KEY = "workshop.adminToken";
const EXAMPLES = [
  "errors from checkout in the last hour by status code",
  "p95 latency of the payment service",
  "top 5 slowest endpoints today",
  "count of logs by severity",
];

// ---- tiny DOM helper -------------------------------------------------------------------
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function show(el, on = true) { el.hidden = !on; }

// ---- identity & tokens -----------------------------------------------------------------
const identity = {
  get name() { return (localStorage.getItem(NAME_KEY) || "").trim(); },
  set name(v) {
    if (v) localStorage.setItem(NAME_KEY, v.trim()); else localStorage.removeItem(NAME_KEY);
  },
};
const adminToken = {
  get value() { return sessionStorage.getItem(TOKEN_KEY) || ""; },
  set value(v) { if (v) sessionStorage.setItem(TOKEN_KEY, v); else sessionStorage.removeItem(TOKEN_KEY); },
};

// ---- API ---------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, problem) {
    const p = problem || {};
    super(p.detail || p.title || `HTTP ${status}`);
    this.status = status;
    this.problem = p;
  }
  get service() { return this.problem.service || serviceFromDetail(this.problem.detail); }
}

function serviceFromDetail(detail) {
  const m = /\b([a-z]+(?:-[a-z]+)*-(?:service|gateway|worker))\b/.exec(detail || "");
  return m ? m[1] : null;
}

async function api(path, { method = "GET", body, admin = false, traceparent } = {}) {
  const headers = { accept: "application/json, application/problem+json" };
  const name = identity.name;
  if (name) headers.baggage = `workshop.attendee=${encodeURIComponent(name)}`;
  if (traceparent) headers.traceparent = traceparent;
  if (body !== undefined) headers["content-type"] = "application/json";
  if (admin && adminToken.value) headers.authorization = `Bearer ${adminToken.value}`;
  let resp;
  try {
    resp = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin", cache: "no-store",
    });
  } catch (err) {
    throw new ApiError(0, { title: "Network error", detail: "the stack could not be reached — is it running?" });
  }
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!resp.ok) {
    const problem = data && typeof data === "object" ? data
      : { title: `HTTP ${resp.status}`, detail: resp.statusText || "unexpected answer" };
    if (resp.status === 429 && !problem.detail) problem.detail = "too many requests; slow down";
    throw new ApiError(resp.status, problem);
  }
  return data;
}

/** Render an ApiError (or any error) as a plain message into an alert box. */
function showError(box, err, context) {
  box.replaceChildren();
  if (!err) { show(box, false); return; }
  const p = err.problem || {};
  const title = h("strong", { text: context ? `${context}: ${p.title || "error"}` : (p.title || "Error") });
  box.append(title, h("p", { text: err.message }));
  const svc = err.service;
  if (svc) box.append(h("p", { class: "small" }, "Failing service: ", h("code", { text: svc })));
  if (Array.isArray(p.errors) && p.errors.length) {
    box.append(h("ul", {}, p.errors.map((e) => h("li", {}, h("code", { text: e.field || "" }), " ", e.reason || ""))));
  }
  if (err.status === 429) box.append(h("p", { class: "small", text: "The stack is rate limiting requests; wait a moment and retry." }));
  show(box, true);
}

// ---- formatting ------------------------------------------------------------------------
function fmtTime(epochSeconds) {
  if (!epochSeconds) return "";
  return new Date(epochSeconds * 1000).toLocaleString();
}
function fmtAgo(epochSeconds) {
  if (!epochSeconds) return "";
  const s = Math.max(0, Date.now() / 1000 - epochSeconds);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(epochSeconds * 1000).toLocaleDateString();
}
function fmtCountdown(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, "0")}`;
}
function fmtCell(v) {
  if (v === null || v === undefined) return "—";
  if (typeof v === "object") return JSON.stringify(v);
  if (typeof v === "number" && !Number.isInteger(v)) return v.toFixed(3).replace(/\.?0+$/, "");
  return String(v);
}
function statusPill(el, status) {
  el.textContent = status || "";
  el.className = `pill pill-${(status || "none").replace(/[^a-z]/g, "")}`;
}

// ---- router ------------------------------------------------------------------------------
const PAGES = ["ask", "history", "status", "instructor"];
const enter = {};
const leave = {};
let current = null;

function route() {
  const name = (location.hash.replace(/^#\/?/, "").split(/[/?]/)[0] || "ask").toLowerCase();
  const page = PAGES.includes(name) ? name : "ask";
  if (current && leave[current]) leave[current]();
  for (const p of PAGES) show($(`page-${p}`), p === page);
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === page) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const changed = current !== null && current !== page;
  current = page;
  document.title = `${page[0].toUpperCase()}${page.slice(1)} · DataPrime Assistant`;
  if (enter[page]) enter[page]();
  if (changed) $("main").focus({ preventScroll: true });
}

// ---- config & identity UI --------------------------------------------------------------
let config = null;
async function loadConfig() {
  try { config = await api("/api/config"); } catch { config = null; }
  if (config && config.application_name) $("footer-app").textContent = `application: ${config.application_name}`;
  renderTraces();
}

function renderIdentity() {
  const name = identity.name;
  $("who-label").textContent = name || "Set your name";
  $("who-avatar").textContent = name ? name[0].toUpperCase() : "?";
  $("identity-summary").textContent = name
    ? `You are “${name}”. Every request carries baggage workshop.attendee=${encodeURIComponent(name)}.`
    : "Set a name so your requests (and traces) are labelled as yours.";
  renderTraces();
}

function tracesQuery(name) {
  return `source spans | filter $d.tags['workshop.attendee'] == '${name.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

// ---- Coralogix links: the attendee's spans for this page session's exact window, the last
// question's trace, the host for Infrastructure Explorer; no team host -> no link, one hint.
const sessionStartMs = Date.now();
let lastTrace = null;

function newTraceparent() {
  const hex = (n) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => b.toString(16).padStart(2, "0")).join("");
  const traceId = hex(16), spanId = hex(8);
  return { traceId, header: `00-${traceId}-${spanId}-01` };
}

function exploreUrl(host, query, fromMs, toMs) {
  return `${host}/explore?query=${encodeURIComponent(query)}&queryType=dataprime&dataset=spans&from=${fromMs - 5000}&to=${toMs + 5000}`;
}

function renderTraces() {
  const body = $("traces-body");
  body.replaceChildren();
  const name = identity.name;
  if (!name) { body.append(h("p", { class: "muted", text: "Set your name first, then ask a question." })); return; }
  const query = tracesQuery(name);
  const cx = config && config.coralogix;
  if (cx && cx.enabled) {
    const host = cx.team_host || "";
    if (host) {
      const link = h("a", { class: "btn primary", href: exploreUrl(host, query, sessionStartMs, Date.now()), target: "_blank", rel: "noopener noreferrer", id: "traces-link" }, "Open my traces ↗");
      // the window ends when the link is opened, not when the page was drawn
      link.addEventListener("click", () => { link.href = exploreUrl(host, query, sessionStartMs, Date.now()); });
      body.append(h("p", { class: "muted", text: "Your spans in Coralogix, since you opened this page:" }), link);
      if (lastTrace) {
        const tq = `source spans | filter $l.traceId == '${lastTrace.id}'`;
        body.append(" ", h("a", { class: "btn", href: exploreUrl(host, tq, lastTrace.startMs, lastTrace.endMs || Date.now()), target: "_blank", rel: "noopener noreferrer", id: "trace-link" }, "Last question's trace ↗"));
      }
    } else {
      body.append(h("p", { class: "muted", id: "traces-hint", text: cx.hint || "set CX_TEAM_URL to get links" }));
    }
    body.append(h("pre", { class: "code small-code" }, h("code", { id: "traces-query", text: query })));
    const infra = cx.infrastructure;
    if (infra && infra.host_name) {
      body.append(h("p", { class: "muted", id: "traces-host", text: `${infra.menu} → pick host.name ${infra.host_name}${infra.host_id ? `, host.id ${infra.host_id}` : ""}` }));
    }
  } else {
    body.append(
      h("p", { class: "muted", text: "Telemetry stays on this machine. In a terminal, run:" }),
      h("pre", { class: "code small-code" }, h("code", { id: "traces-command", text: `workshop traces --attendee ${shellQuote(name)}` })),
    );
  }
}

function shellQuote(s) { return /^[\w.@-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`; }

function openIdentity() {
  const dlg = $("identity-dialog");
  $("identity-name").value = identity.name;
  if (typeof dlg.showModal === "function") dlg.showModal(); else dlg.setAttribute("open", "");
  $("identity-name").focus();
}

function initIdentity() {
  $("who-button").addEventListener("click", openIdentity);
  $("identity-change").addEventListener("click", openIdentity);
  $("identity-cancel").addEventListener("click", () => $("identity-dialog").close());
  $("identity-form").addEventListener("submit", (ev) => {
    const value = $("identity-name").value.trim();
    if (!value) { ev.preventDefault(); $("identity-name").focus(); return; }
    identity.name = value.slice(0, 64);
    renderIdentity();
  });
  renderIdentity();
}

// ---- Ask ---------------------------------------------------------------------------------
let job = { id: null, timer: null, started: 0, rating: 0 };

function initAsk() {
  const examples = $("examples");
  for (const q of EXAMPLES) {
    examples.append(h("button", { type: "button", class: "chip", onclick: () => { $("question").value = q; updateCount(); $("question").focus(); } }, q));
  }
  const updateCount = () => { $("question-count").textContent = `${$("question").value.length} / 500`; };
  $("question").addEventListener("input", updateCount);
  $("question").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) $("ask-form").requestSubmit();
  });
  $("ask-form").addEventListener("submit", (ev) => { ev.preventDefault(); ask(); });
  $("copy-query").addEventListener("click", async () => {
    try { await navigator.clipboard.writeText($("query-text").textContent); $("copy-query").textContent = "Copied"; }
    catch { $("copy-query").textContent = "Select & copy"; }
    setTimeout(() => { $("copy-query").textContent = "Copy"; }, 1500);
  });
  const row = $("star-row");
  for (let i = 1; i <= 5; i++) {
    row.append(h("button", {
      type: "button", class: "star", "data-rating": i, "aria-pressed": "false",
      "aria-label": `${i} of 5`, onclick: () => setRating(i),
    }, "★", h("span", { class: "star-num", text: String(i) })));
  }
  $("rate-form").addEventListener("submit", (ev) => { ev.preventDefault(); rate(); });
}

function setRating(n) {
  job.rating = n;
  for (const b of document.querySelectorAll(".star")) {
    const v = Number(b.dataset.rating);
    b.setAttribute("aria-pressed", String(v === n));
    b.classList.toggle("on", v <= n);
  }
  $("rate-submit").disabled = false;
}

function stopPolling() { if (job.timer) clearTimeout(job.timer); job.timer = null; }

async function ask() {
  const question = $("question").value.trim();
  if (!question) { $("question").focus(); return; }
  stopPolling();
  const btn = $("ask-submit");
  btn.disabled = true; btn.textContent = "Generating…";
  showError($("ask-error"), null);
  for (const id of ["answer", "job", "rate", "trace-card"]) show($(id), false);
  try {
    // The page starts the trace (W3C traceparent), so it knows the id to link to in Coralogix.
    const tp = newTraceparent();
    lastTrace = { id: tp.traceId, startMs: Date.now() };
    const res = await api("/api/queries", { method: "POST", body: { question }, traceparent: tp.header });
    lastTrace.endMs = Date.now();
    renderTraces();
    renderAnswer(res);
    job = { id: res.id, timer: null, started: Date.now(), rating: 0 };
    setRating(0); $("rate-submit").disabled = true;
    $("rate-comment").value = ""; $("rate-result").textContent = "";
    show($("job")); statusPill($("job-status"), res.status);
    $("job-meta").textContent = `job ${res.id}`;
    show($("job-error"), false); show($("result-wrap"), false); $("result-note").textContent = "";
    openTrace($("trace-card"), res.trace_id, true);
    poll(0);
  } catch (err) {
    showError($("ask-error"), err, "Could not answer");
  } finally {
    btn.disabled = false; btn.textContent = "Generate query";
  }
}

function renderAnswer(res) {
  highlightInto($("query-text"), res.query);
  const meta = $("query-meta");
  meta.replaceChildren();
  const item = (k, v) => meta.append(h("div", {}, h("dt", { text: k }), h("dd", { text: v })));
  item("Intent", res.intent);
  item("Confidence", `${Math.round((res.confidence || 0) * 100)}%`);
  item("Source", res.source + (res.cached ? " (cached)" : ""));
  $("query-explanation").textContent = res.explanation || "";
  const v = res.validation || {};
  const box = $("validation");
  box.replaceChildren();
  box.append(h("p", { class: v.valid ? "ok" : "bad" }, h("span", { class: "dot", "aria-hidden": "true" }), v.valid ? "Valid DataPrime" : "Did not validate"));
  const issues = [...(v.errors || []).map((e) => ["error", e]), ...(v.warnings || []).map((w) => ["warning", w])];
  if (issues.length) {
    box.append(h("ul", { class: "issues" }, issues.map(([kind, i]) =>
      h("li", { class: kind }, h("span", { class: "tag", text: kind }), ` line ${i.line}, col ${i.column}: `, i.message))));
  }
  show($("answer"));
}

async function poll(attempt) {
  const id = job.id;
  if (!id) return;
  try {
    const st = await api(`/api/queries/${encodeURIComponent(id)}`);
    if (id !== job.id) return;
    statusPill($("job-status"), st.status);
    const secs = ((Date.now() - job.started) / 1000).toFixed(1);
    $("job-meta").textContent = `job ${id} · ${st.status} after ${secs} s`;
    if (st.status === "done") { renderResult(st.result); show($("rate")); return; }
    if (st.status === "failed") {
      const box = $("job-error");
      box.replaceChildren(h("strong", { text: "The job failed" }), h("p", { text: st.error || "no detail" }));
      const svc = serviceFromDetail(st.error);
      if (svc) box.append(h("p", { class: "small" }, "Failing service: ", h("code", { text: svc })));
      show(box); show($("rate")); return;
    }
  } catch (err) {
    if (id !== job.id) return;
    if (err.status && err.status !== 404 && err.status !== 429 && attempt > 5) {
      showError($("job-error"), err, "Polling failed"); return;
    }
  }
  if (Date.now() - job.started > 120000) {
    showError($("job-error"), new ApiError(0, { title: "Still waiting", detail: "the job has not finished after 2 minutes; the queue worker may be stalled (see Status)" }));
    return;
  }
  const delay = Math.min(250 * 1.4 ** attempt, 2000);
  job.timer = setTimeout(() => poll(attempt + 1), delay);
}

function renderResult(result) {
  const r = result || { columns: [], rows: [] };
  if (r.kind === "not_executed") {
    // Valid DataPrime the local engine does not run: say so plainly; it is not an error.
    show($("result-wrap"), false);
    $("result-note").textContent =
      `${r.message} (line ${r.line}, column ${r.column}). Run it in Coralogix Explore to see rows.`;
    return;
  }
  const table = $("result-table");
  const cols = r.columns && r.columns.length ? r.columns : Object.keys((r.rows || [])[0] || {});
  const rows = (r.rows || []).slice(0, 50);
  table.tHead.replaceChildren(h("tr", {}, cols.map((c) => h("th", { scope: "col", text: c }))));
  table.tBodies[0].replaceChildren(...rows.map((row) =>
    h("tr", {}, cols.map((c) => h("td", { text: fmtCell(Array.isArray(row) ? row[cols.indexOf(c)] : row[c]) })))));
  show($("result-wrap"), cols.length > 0 && rows.length > 0);
  const parts = [];
  const parts0 = rows.length ? [] : ["No rows matched this query in the sample data set."];
  if (r.rows_scanned !== undefined) parts.push(`${r.rows_scanned} rows scanned`);
  if (r.rows_matched !== undefined) parts.push(`${r.rows_matched} matched`);
  if ((r.rows || []).length > rows.length) parts.push(`showing ${rows.length} of ${r.rows.length}`);
  else parts.push(`${rows.length} row${rows.length === 1 ? "" : "s"}`);
  if (r.elapsed_ms !== undefined) parts.push(`${fmtCell(r.elapsed_ms)} ms`);
  $("result-note").textContent = [...parts0, parts.join(" · ")].join(" ");
}

async function rate() {
  if (!job.id || !job.rating) return;
  const btn = $("rate-submit");
  btn.disabled = true;
  const comment = $("rate-comment").value.trim();
  try {
    await api(`/api/queries/${encodeURIComponent(job.id)}/feedback`, {
      method: "POST", body: { rating: job.rating, comment: comment || null },
    });
    $("rate-result").textContent = `Thanks! Rated ${job.rating}/5.`;
  } catch (err) {
    $("rate-result").textContent = `Rating failed: ${err.message}${err.service ? ` (${err.service})` : ""}`;
    btn.disabled = false;
  }
}

// ---- Trace waterfall (Ask and History) -----------------------------------------------
const traceViews = new Map();

function openTrace(card, traceId, fresh) {
  const prev = traceViews.get(card);
  if (prev) prev.stop();
  if (!traceId) { show(card, false); return; }
  show(card, true);
  traceViews.set(card, showTrace(card, traceId, { api, h, config: () => config, fresh }));
}

// ---- History ---------------------------------------------------------------------------
const history = { page: 1, size: 15, total: 0 };

async function loadHistory() {
  const params = new URLSearchParams({ page: history.page, page_size: history.size });
  if ($("history-mine").checked && identity.name) params.set("attendee", identity.name);
  try {
    const data = await api(`/api/history?${params}`);
    showError($("history-error"), null);
    history.total = data.total || 0;
    const tbody = $("history-table").tBodies[0];
    tbody.replaceChildren(...data.items.map((it) => {
      const pill = h("span", {}); statusPill(pill, it.status);
      return h("tr", {},
        h("td", { class: "q" }, h("span", { class: "q-text", text: it.question }), h("code", { class: "q-query", text: it.query || "" }),
          it.trace_id ? h("button", {
            type: "button", class: "btn small ghost trace-open", "data-trace-id": it.trace_id,
            "aria-label": `Show the trace of “${it.question}”`,
            onclick: () => { openTrace($("history-trace"), it.trace_id, false); $("history-trace").scrollIntoView({ block: "nearest" }); },
          }, "Trace ▸") : null),
        h("td", {}, pill),
        h("td", { class: "rating", text: it.rating ? `${"★".repeat(it.rating)}${"☆".repeat(5 - it.rating)}` : "—", "aria-label": it.rating ? `${it.rating} of 5` : "not rated" }),
        h("td", { class: "hide-sm", text: it.attendee || "—" }),
        h("td", { class: "nowrap" }, h("time", { datetime: new Date(it.created_at * 1000).toISOString(), title: fmtTime(it.created_at), text: fmtAgo(it.created_at) })));
    }));
    const pages = Math.max(1, Math.ceil(history.total / history.size));
    $("history-page").textContent = `Page ${history.page} of ${pages} · ${history.total} total`;
    $("history-prev").disabled = history.page <= 1;
    $("history-next").disabled = history.page >= pages;
    show($("history-empty"), data.items.length === 0);
  } catch (err) {
    showError($("history-error"), err, "Could not load history");
  }
}

function initHistory() {
  $("history-prev").addEventListener("click", () => { if (history.page > 1) { history.page--; loadHistory(); } });
  $("history-next").addEventListener("click", () => { history.page++; loadHistory(); });
  $("history-refresh").addEventListener("click", loadHistory);
  $("history-mine").addEventListener("change", () => { history.page = 1; loadHistory(); });
  enter.history = loadHistory;
}

// ---- faults (shared by Status and Instructor) -------------------------------------------
let faults = [];      // [{...fault, _deadline: ms}]
let countdownTimer = null;

async function loadFaults() {
  const list = await api("/api/admin/faults", { admin: true });
  const now = Date.now();
  faults = list.map((f) => ({ ...f, _deadline: now + (f.remaining_seconds ?? 0) * 1000 }));
  return faults;
}

function renderFaults(container, { clearable }) {
  container.replaceChildren();
  if (!faults.length) { container.append(h("p", { class: "muted empty-line", text: "No active faults." })); return; }
  const ul = h("ul", { class: "faults" });
  for (const f of faults) {
    const params = Object.entries(f.params || {}).map(([k, v]) => `${k}=${v}`).join(", ");
    const scope = f.scope === "all" ? "everyone" : `${f.scope} ${f.scope_value}`;
    const li = h("li", { class: "fault", "data-fault-id": f.id },
      h("div", { class: "fault-main" },
        h("span", { class: "fault-kind", text: f.kind }), " → ", h("code", { text: f.target }),
        h("div", { class: "muted small", text: [params, `p=${f.probability}`, scope, `by ${f.created_by}`].filter(Boolean).join(" · ") }),
        h("div", { class: "muted small mono", text: f.id })),
      h("span", { class: "countdown", "data-deadline": f._deadline, "aria-label": "time left", text: fmtCountdown((f._deadline - Date.now()) / 1000) }));
    if (clearable) {
      li.append(h("button", { type: "button", class: "btn small danger-ghost", "aria-label": `Clear fault ${f.id}`, onclick: () => clearFault(f.id) }, "Clear"));
    }
    ul.append(li);
  }
  container.append(ul);
  startCountdown();
}

function startCountdown() {
  if (countdownTimer) return;
  countdownTimer = setInterval(() => {
    const els = document.querySelectorAll(".countdown[data-deadline]");
    if (!els.length) { clearInterval(countdownTimer); countdownTimer = null; return; }
    for (const el of els) {
      const left = (Number(el.dataset.deadline) - Date.now()) / 1000;
      el.textContent = left > 0 ? fmtCountdown(left) : "expired";
      el.classList.toggle("expired", left <= 0);
    }
  }, 1000);
}

async function clearFault(id) {
  try {
    await api(`/api/admin/faults/${encodeURIComponent(id)}`, { method: "DELETE", admin: true });
    $("fault-result").textContent = `Cleared ${id}.`;
  } catch (err) {
    $("fault-result").textContent = `Could not clear ${id}: ${err.message}`;
  }
  refreshInstructorFaults();
}

// ---- Status ------------------------------------------------------------------------------
let statusTimer = null;

async function loadStatus() {
  const [health, stats] = await Promise.allSettled([api("/api/health"), api("/api/stats")]);
  const errBox = $("status-error");
  const failed = [health, stats].find((r) => r.status === "rejected");
  if (failed) showError(errBox, failed.reason, "Status incomplete"); else showError(errBox, null);

  if (health.status === "fulfilled") {
    const hv = health.value;
    statusPill($("health-overall"), hv.status);
    const ul = $("services");
    ul.replaceChildren(...Object.entries(hv.services).sort().map(([name, s]) =>
      h("li", { class: `svc ${s.status}`, "data-service": name },
        h("span", { class: "dot", "aria-hidden": "true" }),
        h("span", { class: "svc-name", text: name }),
        h("span", { class: "svc-state", text: s.status }),
        s.detail ? h("span", { class: "svc-detail muted small", text: s.detail }) : null)));
  }
  if (stats.status === "fulfilled") {
    const s = stats.value;
    const dl = $("figures");
    const fig = (k, v, warn) => h("div", { class: `fig${warn ? " warn" : ""}` }, h("dt", { text: k }), h("dd", { text: fmtCell(v) }));
    const q = s.queue || {};
    const fb = s.feedback || {};
    dl.replaceChildren(
      fig("Stream length", q.length), fig("Pending", q.pending, q.pending > 50), fig("Lag", q.lag, q.lag > 50),
      fig("Dead letters", q.dead, q.dead > 0),
      fig("Jobs done", (s.jobs || {}).done), fig("Jobs failed", (s.jobs || {}).failed, (s.jobs || {}).failed > 0),
      fig("Ratings", fb.count), fig("Avg rating", fb.avg_rating === null || fb.avg_rating === undefined ? "—" : Number(fb.avg_rating).toFixed(2)),
    );
  }
  const box = $("status-faults");
  if (!adminToken.value) {
    box.replaceChildren(h("p", { class: "muted empty-line" }, "Instructor token needed to list faults. ",
      h("a", { href: "#/instructor", text: "Enter it on the Instructor page" }), "."));
  } else {
    try { await loadFaults(); renderFaults(box, { clearable: false }); } catch (err) {
      box.replaceChildren(); const e = h("div", { class: "alert error" }); box.append(e); showError(e, err, "Faults");
    }
  }
  $("status-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

function initStatus() {
  const red = initRed({ api, h, identity, $ });
  enter.status = () => {
    red.start();
    loadStatus();
    clearInterval(statusTimer);
    statusTimer = setInterval(() => { if (!document.hidden) loadStatus(); }, 5000);
  };
  leave.status = () => { clearInterval(statusTimer); statusTimer = null; red.stop(); };
}

// ---- Instructor --------------------------------------------------------------------------
let catalogue = [];

function tokenState(text, ok) {
  const el = $("token-state");
  el.textContent = text;
  el.className = `hint ${ok === true ? "ok" : ok === false ? "bad" : ""}`;
}

async function unlock() {
  if (!adminToken.value) {
    show($("instructor-tools"), false);
    tokenState("Enter the admin token to manage faults.");
    return;
  }
  try {
    catalogue = await api("/api/admin/faults/catalogue", { admin: true });
    tokenState("Unlocked — token kept for this browser tab only.", true);
    buildFaultForm();
    show($("instructor-tools"));
    refreshInstructorFaults();
    startRoomProgress();
  } catch (err) {
    show($("instructor-tools"), false);
    tokenState(err.status === 401 || err.status === 403 ? "That token was not accepted." : `Could not check the token: ${err.message}`, false);
  }
}

async function refreshInstructorFaults() {
  const box = $("instructor-faults");
  try { await loadFaults(); renderFaults(box, { clearable: true }); } catch (err) {
    box.replaceChildren(); const e = h("div", { class: "alert error" }); box.append(e); showError(e, err, "Faults");
  }
}

function buildFaultForm() {
  const kindSel = $("fault-kind");
  const previous = kindSel.value;
  kindSel.replaceChildren(...catalogue.map((k) => h("option", { value: k.kind, text: k.kind })));
  if (previous && catalogue.some((k) => k.kind === previous)) kindSel.value = previous;
  onKindChange();
}

function onKindChange() {
  const kind = catalogue.find((k) => k.kind === $("fault-kind").value);
  if (!kind) return;
  $("fault-description").textContent = `${kind.description} Symptom: ${kind.symptom}`;
  $("fault-target").replaceChildren(...kind.targets.map((t) => h("option", { value: t, text: t })));
  const fs = $("fault-params");
  fs.replaceChildren(h("legend", { text: "Parameters" }));
  const schema = kind.params_schema || {};
  const props = schema.properties || {};
  const required = new Set(schema.required || []);
  const names = Object.keys(props);
  if (!names.length) fs.append(h("p", { class: "muted small", text: "This kind takes no parameters." }));
  for (const name of names) fs.append(paramField(name, resolve(schema, props[name]), required.has(name)));
  const scopeSel = $("fault-scope");
  for (const opt of scopeSel.options) opt.disabled = !kind.per_request && opt.value !== "all";
  if (!kind.per_request) scopeSel.value = "all";
  $("fault-probability").disabled = !kind.per_request;
  onScopeChange();
}

function resolve(schema, prop) {
  // pydantic may put enums behind $ref / allOf; follow one level.
  const ref = prop.$ref || (prop.allOf && prop.allOf[0] && prop.allOf[0].$ref);
  if (ref) {
    const key = ref.split("/").pop();
    return { ...((schema.$defs || schema.definitions || {})[key] || {}), ...prop };
  }
  return prop;
}

function paramField(name, p, required) {
  const id = `param-${name}`;
  const wrap = h("div", { class: "param" });
  const label = h("label", { for: id, text: p.title || name });
  wrap.append(label);
  const enumValues = p.enum || (p.const !== undefined ? [p.const] : null);
  let input;
  if (enumValues) {
    input = h("select", { id, name, "data-param": name, "data-type": p.type || typeof enumValues[0] });
    for (const v of enumValues) input.append(h("option", { value: String(v), text: String(v) }));
    if (p.default !== undefined) input.value = String(p.default);
  } else if (p.type === "integer" || p.type === "number") {
    input = h("input", {
      id, name, type: "number", "data-param": name, "data-type": p.type, required,
      min: p.minimum ?? (p.exclusiveMinimum !== undefined ? p.exclusiveMinimum + (p.type === "integer" ? 1 : 0) : undefined),
      max: p.maximum ?? (p.exclusiveMaximum !== undefined ? p.exclusiveMaximum - (p.type === "integer" ? 1 : 0) : undefined),
      step: p.type === "integer" ? 1 : "any", inputmode: p.type === "integer" ? "numeric" : "decimal",
    });
    if (p.default !== undefined) input.value = String(p.default);
  } else if (p.type === "boolean") {
    input = h("input", { id, name, type: "checkbox", "data-param": name, "data-type": "boolean" });
    input.checked = Boolean(p.default);
    wrap.classList.add("param-check");
  } else {
    input = h("input", {
      id, name, type: "text", "data-param": name, "data-type": "string", required,
      maxlength: p.maxLength, minlength: p.minLength, pattern: p.pattern ? p.pattern.replace(/^\^|\$$/g, "") : undefined,
    });
    if (p.default !== undefined) input.value = String(p.default);
  }
  wrap.append(input);
  const range = (p.minimum !== undefined || p.maximum !== undefined) ? ` (${p.minimum ?? "…"}–${p.maximum ?? "…"})` : "";
  if (p.description || range) {
    const hid = `${id}-hint`;
    wrap.append(h("p", { class: "hint", id: hid, text: `${p.description || ""}${range}` }));
    input.setAttribute("aria-describedby", hid);
  }
  return wrap;
}

function onScopeChange() {
  const scope = $("fault-scope").value;
  const val = $("fault-scope-value");
  val.disabled = scope === "all";
  if (scope === "attendee" && !val.value) val.value = identity.name;
  if (scope === "all") val.value = "";
}

function readParams() {
  const params = {};
  const problems = [];
  for (const el of $("fault-params").querySelectorAll("[data-param]")) {
    const name = el.dataset.param;
    const type = el.dataset.type;
    if (type === "boolean") { params[name] = el.checked; continue; }
    if (el.value === "") continue;
    if (!el.checkValidity()) problems.push({ field: `params.${name}`, reason: el.validationMessage });
    params[name] = type === "integer" || type === "number" ? Number(el.value) : el.value;
  }
  return { params, problems };
}

async function submitFault(ev) {
  ev.preventDefault();
  const { params, problems } = readParams();
  const errBox = $("fault-error");
  for (const id of ["fault-probability", "fault-ttl"]) {
    const el = $(id);
    if (!el.disabled && !el.checkValidity()) problems.push({ field: el.id.replace("fault-", ""), reason: el.validationMessage });
  }
  if (problems.length) {
    showError(errBox, new ApiError(422, { title: "Check the form", detail: "some values are out of range", errors: problems }));
    return;
  }
  const scope = $("fault-scope").value;
  const body = {
    kind: $("fault-kind").value,
    target: $("fault-target").value,
    params,
    probability: $("fault-probability").disabled ? 1 : Number($("fault-probability").value || 1),
    scope,
    scope_value: scope === "all" ? null : $("fault-scope-value").value.trim() || null,
    ttl_seconds: Number($("fault-ttl").value || 600),
  };
  const btn = $("fault-submit");
  btn.disabled = true;
  try {
    const f = await api("/api/admin/faults", { method: "POST", body, admin: true });
    showError(errBox, null);
    $("fault-result").textContent = `Injected ${f.id} for ${f.ttl_seconds} s.`;
    refreshInstructorFaults();
  } catch (err) {
    showError(errBox, err, "Fault not injected");
  } finally {
    btn.disabled = false;
  }
}

function initInstructor() {
  $("admin-token").value = adminToken.value ? "••••••••" : "";
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = $("admin-token").value.trim();
    if (v && v !== "••••••••") adminToken.value = v;
    unlock();
  });
  $("admin-token").addEventListener("focus", () => { if ($("admin-token").value === "••••••••") $("admin-token").value = ""; });
  $("token-forget").addEventListener("click", () => {
    adminToken.value = ""; $("admin-token").value = ""; faults = []; unlock();
  });
  $("fault-kind").addEventListener("change", onKindChange);
  $("fault-scope").addEventListener("change", onScopeChange);
  $("fault-form").addEventListener("submit", submitFault);
  $("faults-clear-all").addEventListener("click", async () => {
    try {
      const r = await api("/api/admin/faults", { method: "DELETE", admin: true });
      $("fault-result").textContent = `Cleared ${r.cleared ?? "all"} fault(s).`;
    } catch (err) { $("fault-result").textContent = `Could not clear: ${err.message}`; }
    refreshInstructorFaults();
  });
  $("reset-stack").addEventListener("click", async () => {
    // eslint-disable-next-line no-alert
    if (!window.confirm("Reset the whole stack? This clears faults, the queue, the cache, sessions and every stored result.")) return;
    const out = $("reset-result");
    out.textContent = "Resetting…";
    try {
      const r = await api("/api/admin/reset", { method: "POST", admin: true });
      out.textContent = `Stack reset in ${r.elapsed_ms} ms (${r.faults_cleared} fault(s) cleared).`;
    } catch (err) { out.textContent = `Reset failed: ${err.message}${err.service ? ` (${err.service})` : ""}`; }
    refreshInstructorFaults();
  });
  enter.instructor = unlock;
  leave.instructor = () => { clearInterval(progressTimer); progressTimer = null; };
}

// ---- Room progress (instructor) ----------------------------------------------------------
let progressTimer = null;

function ago(ts) {
  const s = Math.max(0, Math.round(Date.now() / 1000 - ts));
  return s < 60 ? `${s} s ago` : `${Math.round(s / 60)} min ago`;
}

async function loadRoomProgress() {
  const box = $("room-progress");
  try {
    const [rows, events] = await Promise.all([
      api("/api/admin/room/progress", { admin: true }), api("/api/room/events"),
    ]);
    $("room-events").replaceChildren(events.length
      ? h("p", { class: "small" }, "Room events running: ",
        ...events.map((e) => h("code", { text: `${e.kind} on ${e.target} ` })))
      : h("p", { class: "muted small", text: "No room event running." }));
    if (!rows.length) {
      box.replaceChildren(h("p", { class: "muted empty-line", text: "No lab has reported yet." }));
    } else {
      const head = h("tr", {}, ...["Attendee", "Lab", "Step", "Checks", "Updated"].map((t) => h("th", { text: t })));
      const body = rows.map((r) => h("tr", { "data-attendee": r.attendee },
        h("td", { text: r.attendee }), h("td", { text: r.lab || "" }),
        h("td", { class: "progress-step", text: `${r.step}${r.detail ? ` — ${r.detail}` : ""}` }),
        h("td", { class: "progress-checks" }, ...Object.entries(r.checks).map(([q, c]) => h("span", {
          class: `check ${c.verdict === "passed" ? "ok" : c.verdict === "failed" ? "bad" : ""}`,
          title: `${q}: ${c.verdict}`,
          text: `${c.verdict === "passed" ? "✓" : c.verdict === "failed" ? "✗" : "…"} ${q} `,
        }))),
        h("td", { text: ago(r.updated) })));
      box.replaceChildren(h("table", { class: "table", id: "room-progress-table" }, h("thead", {}, head), h("tbody", {}, ...body)));
    }
    $("room-progress-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    box.replaceChildren(); const e = h("div", { class: "alert error" }); box.append(e); showError(e, err, "Room progress");
  }
}

function startRoomProgress() {
  loadRoomProgress();
  clearInterval(progressTimer);
  progressTimer = setInterval(() => { if (!document.hidden && adminToken.value) loadRoomProgress(); }, 2000);
}

// ---- boot --------------------------------------------------------------------------------
function boot() {
  initIdentity();
  initAsk();
  initHistory();
  initStatus();
  initInstructor();
  window.addEventListener("hashchange", route);
  route();
  loadConfig();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
else boot();
