// The staff dashboard (issue 18): machines, releases, rollout, audit, staff, plots. No build step: this file is served as is.
"use strict";
// The session token stays in memory: a reload means logging in again; nothing in cookies, so no CSRF.
let token = null, me = null, events = null;
const states = ["awaiting", "provisioned", "deployed", "draining", "retired"];
const ranks = { viewer: 0, operator: 1, admin: 2 };
// A deployed relay counts as serving while its latest health report is younger than this (relays report every 30 s).
const servingReportAge = 120_000;
const $ = id => document.getElementById(id);
const data = { machines: [], health: new Map(), releases: [], allowed: [], rollout: null, samples: [], sampleHours: 6 };
let view = "overview";

async function api(method, path, body, allow404) {
  const response = await fetch(path, {
    method, headers: { "Authorization": "Bearer " + token, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body) });
  if (allow404 && response.status === 404) return null;
  if (!response.ok) {
    let message = response.status + "";
    try { message = (await response.json()).message; } catch { }
    throw new Error(message);
  }
  return response.status === 204 ? null : response.json();
}

const may = role => me !== null && ranks[me.role] >= ranks[role];

// ---- formatting (all text goes through textContent; nothing from the server is parsed as HTML)
function ago(at) {
  const s = Math.max(0, Math.round((Date.now() - at) / 1000));
  return s < 120 ? `seen ${s} s ago` : s < 7200 ? `seen ${Math.round(s / 60)} min ago` : `seen ${Math.round(s / 3600)} h ago`;
}
function bytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "kB", "MB", "GB", "TB"]; let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}
function duration(s) {
  if (s === null || s === undefined) return "—";
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor(s % 3600 / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor(s % 86400 / 3600)} h`;
}
const time = iso => iso ? new Date(iso).toLocaleString() : "—";
const short = digest => digest ? digest.slice(0, 12) : "—";
const locationOf = m => m.placement ? `${m.placement.country_code}-${m.placement.city_code}` : null;

function cell(row, text, className) {
  const td = row.insertCell(); td.textContent = text === null || text === undefined ? "—" : String(text);
  if (className) td.className = className; return td;
}
function button(parent, label, onclick, danger) {
  const b = document.createElement("button"); b.type = "button"; b.textContent = label;
  if (danger) b.className = "danger";
  b.addEventListener("click", onclick); parent.append(b); return b;
}
function option(select, value, label) {
  const o = document.createElement("option"); o.value = value; o.textContent = label ?? value; select.append(o); return o;
}
function showError(e) { $("action-error").textContent = e.message; }

// ---- the action dialog: every action asks for a reason; destructive ones say what they destroy and need a second click
function ask({ title, warning, fields, confirm, danger }) {
  return new Promise(resolve => {
    const dialog = $("action-dialog");
    $("action-title").textContent = title;
    $("action-warning").textContent = warning || "";
    $("action-dialog-error").textContent = "";
    $("action-reason").value = "";
    const root = $("action-fields"); root.replaceChildren();
    const inputs = {};
    for (const f of fields || []) {
      const label = document.createElement("label"); label.textContent = f.label + " ";
      const i = document.createElement("input"); i.name = f.name; i.value = f.value ?? ""; i.placeholder = f.placeholder ?? "";
      label.append(i); root.append(label); inputs[f.name] = i;
    }
    const ok = $("action-confirm");
    ok.textContent = confirm || "Confirm"; ok.className = danger ? "danger" : "";
    let armed = !danger;
    const finish = result => {
      $("action-form").removeEventListener("submit", submit); $("action-cancel").removeEventListener("click", cancel);
      dialog.removeEventListener("cancel", cancel);
      dialog.close(); resolve(result);
    };
    const submit = e => {
      e.preventDefault();
      const reason = $("action-reason").value.trim();
      if (!reason) { $("action-dialog-error").textContent = "A reason is required (it goes into the audit trail)."; return; }
      if (!armed) {   // destructive: the first click arms, the second confirms
        armed = true; ok.textContent = "Yes, " + (confirm || "confirm").toLowerCase();
        $("action-dialog-error").textContent = "This cannot be undone from here. Click again to confirm.";
        return;
      }
      const values = {}; for (const [k, v] of Object.entries(inputs)) values[k] = v.value.trim();
      finish({ reason, values });
    };
    const cancel = e => { if (e) e.preventDefault(); finish(null); };
    $("action-form").addEventListener("submit", submit); $("action-cancel").addEventListener("click", cancel);
    dialog.addEventListener("cancel", cancel);
    dialog.showModal();
    (Object.values(inputs)[0] || $("action-reason")).focus();
  });
}

async function act(path, body, after) {
  $("action-error").textContent = "";
  try { await api("POST", path, body); await (after || refreshMachines)(); }
  catch (e) { showError(e); }
}

// ---- login, TOTP enrollment, logout
$("login").addEventListener("submit", async e => {
  e.preventDefault();
  $("login-error").textContent = "";
  const response = await fetch("/api/v1/login", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: $("username").value, password: $("password").value, totp: $("totp").value || null }) });
  const body = await response.json();
  if (!response.ok) { $("login-error").textContent = body.message; return; }
  token = body.token;
  if (body.totp_enrollment_required) {
    // This session may only enroll TOTP (issue 17): enroll, then log in again with a code.
    const begin = await api("POST", "/api/v1/me/totp");
    $("enroll-secret").textContent = begin.secret;
    $("login").hidden = true; $("enroll").hidden = false;
    return;
  }
  me = { username: body.username, role: body.role };
  $("me").textContent = body.username + " (" + body.role + ")";
  $("login").hidden = true; $("main").hidden = false; $("session").hidden = false;
  for (const el of document.querySelectorAll("[data-role]")) el.hidden = !may(el.dataset.role);
  await refreshAll();
  select(view);
  listen();
});

$("enroll").addEventListener("submit", async e => {
  e.preventDefault();
  $("enroll-error").textContent = "";
  try { await api("POST", "/api/v1/me/totp/confirm", { code: $("enroll-code").value }); }
  catch (error) { $("enroll-error").textContent = error.message; return; }
  try { await api("POST", "/api/v1/logout"); } catch { }
  token = null;
  $("enroll").hidden = true; $("login").hidden = false;
  $("password").value = ""; $("totp").value = "";
  $("login-error").textContent = "TOTP enabled: log in again with a code from your authenticator (a later one than you just entered)";
});

$("logout").addEventListener("click", async () => {
  try { await api("POST", "/api/v1/logout"); } catch { }
  if (events) events.abort();
  token = null; location.reload();
});

// ---- tabs
for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => select(b.dataset.view));
function select(name) {
  view = name;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.view === name);
  for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== "view-" + name;
  if (name === "audit") loadAudit(auditPages[auditPages.length - 1]).catch(showError);
  if (name === "staff") refreshStaff().catch(showError);
  if (name === "overview") drawPlots();
  if (name === "rollout") drawRollout();
}

// ---- live updates: Server-Sent Events read with fetch (EventSource cannot send an Authorization header). Bursts of events
// are coalesced into one refresh; "health" arrives at most every few seconds (the controller throttles it).
let reconnected = false;
async function listen() {
  events = new AbortController();
  while (token) {
    try {
      const response = await fetch("/api/v1/events", { headers: { "Authorization": "Bearer " + token }, signal: events.signal });
      if (!response.ok) throw new Error("events " + response.status);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "", first = !reconnected;
      reconnected = true;
      $("status").textContent = "live";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const message = buffer.slice(0, end); buffer = buffer.slice(end + 2);
          const type = (message.match(/^event: (\S+)/m) || [])[1];
          // The stream opens with the current version: loaded at login already; after a reconnect it may be news.
          if (type === "machines" && first) { first = false; continue; }
          if (type === "machines" || type === "rollout") soon("all");
          else if (type === "health") soon("health");
        }
      }
    } catch (e) { if (events.signal.aborted) return; }
    $("status").textContent = "reconnecting…";
    await new Promise(r => setTimeout(r, 1000));
  }
}

let pending = null, pendingTimer = 0;
function soon(what) {
  pending = pending === "all" ? "all" : what;
  if (pendingTimer) return;
  pendingTimer = setTimeout(async () => {
    const w = pending; pending = null; pendingTimer = 0;
    try { if (w === "all") await refreshAll(); else await refreshHealth(); } catch (e) { showError(e); }
  }, 200);
}

async function refreshAll() {
  await Promise.all([refreshMachines(), refreshReleases(), refreshRollout(), refreshSamples()]);
  if (view === "audit" && auditPages.length === 1) await loadAudit(null);
  if (view === "staff") await refreshStaff();
}

async function refreshHealth() {
  const health = await api("GET", "/api/v1/health");
  data.health = new Map(health.map(h => [h.machine_id, h]));
  renderMachines(); renderOverview();
  await refreshSamples();
}

// ---- machines
async function refreshMachines() {
  const [machines, health] = await Promise.all([api("GET", "/api/v1/machines"), api("GET", "/api/v1/health")]);
  data.machines = machines;
  data.health = new Map(health.map(h => [h.machine_id, h]));
  renderMachines(); renderOverview();
}

const serving = m => {
  const h = data.health.get(m.id);
  return m.state === "deployed" && h && Date.now() - Date.parse(h.reported_at) < servingReportAge;
};

function fillFilter(select, values) {
  const current = select.value;
  while (select.options.length > 1) select.remove(1);
  for (const v of values) option(select, v);
  select.value = values.includes(current) ? current : "";
}
for (const s of states) option($("filter-state"), s);
$("filter-state").addEventListener("change", () => renderMachines());
$("filter-location").addEventListener("change", () => renderMachines());

function renderMachines() {
  const locations = [...new Set(data.machines.map(locationOf).filter(l => l))].sort();
  fillFilter($("filter-location"), locations);
  const state = $("filter-state").value, where = $("filter-location").value;
  const list = data.machines.filter(m => (!state || m.state === state) && (!where || locationOf(m) === where));
  $("machines-count").textContent = `${list.length} of ${data.machines.length} machines`;
  const tbody = $("machines-table").tBodies[0];
  tbody.replaceChildren();
  for (const m of list) {
    const h = data.health.get(m.id);
    const row = tbody.insertRow(); row.dataset.machine = m.id; row.dataset.state = m.state;
    cell(row, m.state, "state state-" + m.state);
    const id = cell(row, m.id.slice(0, 12) + "…", "machine-id mono");
    id.title = m.id + "\nfingerprint " + m.fingerprint;   // compare with the relay's console
    cell(row, m.placement ? m.placement.hostname : null, "hostname");
    const where = cell(row, locationOf(m), "location"); if (m.placement) where.title = `${m.placement.city}, ${m.placement.country}`;
    const release = cell(row, (m.release ?? "?") + (m.machine_class ? ` ${m.machine_class}, floor ${m.floor ?? 0}` : "")
      + (m.below_floor ? " — BELOW FLOOR" : ""), "release");
    if (m.below_floor) release.classList.add("error");
    const digest = cell(row, short(m.package_digest), "digest mono"); digest.title = m.package_digest;
    const fresh = cell(row, (m.freshness || "unreported") + (m.freshness_reason ? ` (${m.freshness_reason})` : ""), "freshness");
    if (m.freshness === "unfresh") fresh.classList.add("error");
    attestationCell(row, m);
    const seen = cell(row, h ? ago(Date.parse(h.reported_at)) : "no report", "seen");
    if (h) { seen.dataset.at = Date.parse(h.reported_at); seen.title = h.reported_at; }
    if (m.state === "deployed" && !serving(m)) seen.classList.add("stale");
    cell(row, h ? h.peers : null, "peers");
    cell(row, h ? (h.handshakes_last_3_minutes ?? null) : null, "handshakes");
    cell(row, h ? `${bytes(h.rx_bytes)} / ${bytes(h.tx_bytes)}` : null, "bytes");
    cell(row, h ? duration(h.uptime_seconds ?? null) : null, "uptime");
    cell(row, h ? (h.agent_version ?? null) : null, "agent");
    cell(row, m.applied_revision, "revision");
    machineActions(row.insertCell(), m);
  }
}

// Attestation at the latest enrollment (issue 19; docs/attestation.md). null: enrolled before attestation existed.
function attestationCell(row, m) {
  if (m.attestation === "attested") {
    const td = cell(row, "attested" + (m.attested_release ? ` r${m.attested_release}` : "") + ` (${short(m.attested_package_digest)})`, "attestation");
    td.title = `package ${m.attested_package_digest}` + (m.attested_release ? `, release ${m.attested_release}` : "");
    return td;
  }
  if (m.attestation === "failed") {
    const td = cell(row, `failed: ${m.attestation_failed_step ?? "?"}`, "attestation error");
    td.title = m.attestation_detail ?? "";
    return td;
  }
  const td = cell(row, m.attestation, "attestation");
  if (m.attestation_detail) td.title = m.attestation_detail;
  return td;
}

// What the provision and deploy dialogs say about a machine that did not attest: with --attestation required the
// controller refuses it (409 not_attested); with optional it is staff's call.
function attestationWarning(m) {
  if (m.attestation === "failed")
    return `Attestation failed at step ${m.attestation_failed_step ?? "?"}: ${m.attestation_detail ?? "no detail"}.`;
  if (m.attestation === "absent") return "This machine sent no TPM evidence at its latest enrollment (attestation absent).";
  return "";
}

// Seen-ago texts tick locally: no request.
setInterval(() => {
  for (const td of document.querySelectorAll("#machines-table td.seen[data-at]")) td.textContent = ago(Number(td.dataset.at));
}, 1000);

const placementFields = p => [
  ["hostname", "Hostname", "se-got-wg-101"], ["country_code", "Country code", "se"], ["country", "Country", "Sweden"],
  ["city_code", "City code", "got"], ["city", "City", "Gothenburg"], ["provider", "Provider", "31173"],
  ["ipv4_addr_in", "IPv4 in", "185.213.154.68"], ["ipv4_addr_out", "IPv4 out (optional)", ""],
].map(([name, label, placeholder]) => ({ name, label, placeholder, value: p ? p[name] : "" }));

function machineActions(td, m) {
  if (!may("operator")) return;
  const path = action => `/api/v1/machines/${encodeURIComponent(m.id)}/${action}`;
  if (m.state === "awaiting" || m.state === "provisioned")
    button(td, "Provision…", async () => {
      const r = await ask({ title: `Provision ${m.id}`, warning: attestationWarning(m), fields: placementFields(m.placement), confirm: "Provision" });
      if (!r) return;
      const v = r.values;
      await act(path("provision"), { hostname: v.hostname, country_code: v.country_code, country: v.country, city_code: v.city_code,
        city: v.city, provider: v.provider, owned: true, ipv4_addr_in: v.ipv4_addr_in, ipv4_addr_out: v.ipv4_addr_out || null, reason: r.reason });
    });
  if (m.state === "provisioned" || m.state === "draining" || (m.state === "awaiting" && m.placement)) {
    button(td, "Deploy…", async () => {
      const r = await ask({ title: `Deploy ${m.placement ? m.placement.hostname : m.id}`, warning: attestationWarning(m), confirm: "Deploy" });
      if (r) await act(path("deploy"), { reason: r.reason });
    });
    // The controller refuses a boot that is not known fresh (409 unfresh); staff may override it, with a reason (audited).
    if (m.freshness !== "fresh") button(td, "Override freshness…", async () => {
      const r = await ask({ title: `Deploy ${m.id} although its boot is not known fresh`, confirm: "Override freshness", danger: true,
        warning: ["The controller cannot tell that this machine booted the package its channel names now.", attestationWarning(m)].join(" ").trim() });
      if (r) await act(path("deploy"), { reason: r.reason, override_freshness: true });
    });
  }
  if (m.state === "deployed") button(td, "Drain…", async () => {
    const r = await ask({ title: `Drain ${m.placement ? m.placement.hostname : m.id}`, confirm: "Drain", danger: true,
      warning: "Clients are told to move away: the relay leaves the relay list as active." });
    if (r) await act(path("drain"), { reason: r.reason });
  }, true);
  if (m.state !== "retired") button(td, "Retire…", async () => {
    const r = await ask({ title: `Retire ${m.placement ? m.placement.hostname : m.id}`, confirm: "Retire", danger: true,
      warning: "Retired for good: this boot of the machine never serves again." });
    if (r) await act(path("retire"), { reason: r.reason });
  }, true);
}

// ---- overview and plots (uPlot, vendored: /dashboard/uPlot.iife.min.js)
function locationTotals() {
  const by = new Map();
  for (const m of data.machines) {
    const l = locationOf(m); if (!l || m.state === "retired" || m.state === "awaiting") continue;
    const t = by.get(l) || { location: l, deployed: 0, serving: 0, peers: 0, connected: 0 };
    if (m.state === "deployed") t.deployed++;
    if (serving(m)) {
      const h = data.health.get(m.id);
      t.serving++; t.peers += h.peers; t.connected += h.handshakes_last_3_minutes ?? 0;
    }
    by.set(l, t);
  }
  return [...by.values()].sort((a, b) => a.location.localeCompare(b.location));
}

function renderOverview() {
  const totals = locationTotals();
  const sum = k => totals.reduce((a, t) => a + t[k], 0);
  $("overview-summary").textContent = `${sum("serving")} of ${sum("deployed")} deployed relays serving, ` +
    `${sum("connected")} connected peers (handshake in 3 min) of ${sum("peers")}, ${totals.length} locations, ` +
    `${data.machines.filter(m => m.state === "awaiting").length} awaiting provisioning`;
  const tbody = $("locations-table").tBodies[0]; tbody.replaceChildren();
  for (const t of totals) {
    const row = tbody.insertRow(); row.dataset.location = t.location;
    cell(row, t.location); cell(row, t.deployed); cell(row, t.serving, "serving"); cell(row, t.peers); cell(row, t.connected);
  }
  if (view === "overview") drawPlots();
}

$("plot-hours").addEventListener("change", async () => {
  data.sampleHours = Number($("plot-hours").value); data.samples = [];
  try { await refreshSamples(); } catch (e) { showError(e); }
});

// The controller keeps one sample per location per minute (schema 11, pruned after two days): fleet totals per minute,
// fetched once for the window, then only those after the last one (on "health" events).
async function refreshSamples() {
  const last = data.samples.length ? data.samples[data.samples.length - 1].at : null;
  const query = last ? `since=${encodeURIComponent(last)}` : `hours=${data.sampleHours}`;
  const got = await api("GET", "/api/v1/health/samples?" + query, undefined, true);
  if (!got) return;
  const cutoff = Date.now() - data.sampleHours * 3600_000;
  data.samples = data.samples.concat(got.points.filter(p => !last || Date.parse(p.at) > Date.parse(last)))
    .filter(p => Date.parse(p.at) >= cutoff);
  if (view === "overview") drawPlots();
}

const plots = {};
let capacity = [];
function plot(id, options, series) {
  const root = $(id);
  const width = Math.max(300, Math.min(1100, root.clientWidth || 900));
  if (plots[id] && plots[id].series.length === options.series.length && plots[id].width === width) { plots[id].setData(series); return; }
  if (plots[id]) plots[id].destroy();
  root.replaceChildren();
  plots[id] = new uPlot({ width, height: 220, ...options }, series, root);
}

function drawPlots() {
  if (typeof uPlot === "undefined" || $("view-overview").hidden) return;
  // Serving relays and connected peers over time (the controller sums the locations of each sample time).
  const times = data.samples.map(p => p.at), at = new Map(data.samples.map(p => [p.at, p]));
  plot("plot-fleet", {
    title: "Serving relays and connected peers",
    scales: { x: { time: true }, relays: { range: (u, min, max) => [0, Math.max(1, max)] }, peers: { range: (u, min, max) => [0, Math.max(1, max)] } },
    axes: [{}, { scale: "relays", label: "relays" }, { scale: "peers", label: "peers", side: 1, grid: { show: false } }],
    series: [{}, { label: "serving relays", scale: "relays", stroke: "#0a6", width: 2 },
             { label: "connected peers", scale: "peers", stroke: "#36c", width: 2 }],
  }, [times.map(t => Date.parse(t) / 1000), times.map(t => at.get(t).serving), times.map(t => at.get(t).connected)]);
  // Capacity per location now: a bar of deployed relays with the serving ones over it (grey above green: deployed but not
  // serving), and connected peers as points on their own axis.
  // A plot is made once and then given new data: its callbacks read the current locations, not the ones it was made with.
  const totals = capacity = locationTotals();
  const bars = uPlot.paths.bars({ size: [0.5, 60] });
  plot("plot-locations", {
    title: "Capacity per location",
    scales: { x: { time: false, range: () => [-0.5, Math.max(0.5, capacity.length - 0.5)] },
              relays: { range: (u, min, max) => [0, Math.max(1, max)] }, peers: { range: (u, min, max) => [0, Math.max(1, max)] } },
    axes: [{ splits: () => capacity.map((t, i) => i), values: (u, splits) => splits.map(i => capacity[i] ? capacity[i].location : "") },
           { scale: "relays", label: "relays" }, { scale: "peers", label: "connected peers", side: 1, grid: { show: false } }],
    series: [{ label: "location", value: (u, i) => i === null || !capacity[i] ? "—" : capacity[i].location },
             { label: "deployed", scale: "relays", stroke: "#999", fill: "#ccc", paths: bars },
             { label: "serving", scale: "relays", stroke: "#0a6", fill: "#0a6a", paths: bars },
             { label: "connected peers", scale: "peers", stroke: "#36c", paths: () => null, points: { show: true, size: 10, fill: "#36c" } }],
  }, [totals.map((t, i) => i), totals.map(t => t.deployed), totals.map(t => t.serving), totals.map(t => t.connected)]);
}

// ---- releases, channels, packages
async function refreshReleases() {
  const [releases, allowed] = await Promise.all([api("GET", "/api/v1/releases"), api("GET", "/api/v1/packages/allowed")]);
  data.releases = releases; data.allowed = allowed;
  renderReleases();
}

function renderReleases() {
  const classes = $("release-classes").tBodies[0]; classes.replaceChildren();
  const below = $("below-floor").tBodies[0]; below.replaceChildren();
  const releaseOf = new Map();
  for (const c of data.releases) {
    if (c.current_digest) releaseOf.set(c.current_digest, c.current_release);
    for (const m of c.machines) if (m.release !== null && m.release !== undefined && !releaseOf.has(m.package_digest)) releaseOf.set(m.package_digest, m.release);
    const row = classes.insertRow(); row.dataset.class = c.machine_class;
    cell(row, c.machine_class); cell(row, c.current_release, "current-release");
    const d = cell(row, short(c.current_digest), "mono"); d.title = c.current_digest || "";
    cell(row, c.min_release, "floor"); cell(row, c.below_floor, "below"); cell(row, time(c.updated_at));
    const td = row.insertCell();
    if (may("admin")) {
      button(td, "Set current…", async () => {
        const r = await ask({ title: `Current package of ${c.machine_class}`, confirm: "Set current",
          fields: [{ name: "digest", label: "Digest (sha256)", value: c.current_digest }, { name: "release", label: "Release", value: c.current_release }] });
        if (r) await act(`/api/v1/releases/${encodeURIComponent(c.machine_class)}/current`,
          { digest: r.values.digest, release: Number(r.values.release), reason: r.reason }, refreshAll);
      });
      button(td, "Set floor…", async () => {
        const r = await ask({ title: `Floor of ${c.machine_class}`, confirm: "Set floor", danger: true,
          warning: "Machines below the floor are refused boot tickets and shown as below floor.",
          fields: [{ name: "min_release", label: "Lowest release allowed", value: c.min_release }] });
        if (r) await act(`/api/v1/releases/${encodeURIComponent(c.machine_class)}/floor`,
          { min_release: Number(r.values.min_release), reason: r.reason }, refreshAll);
      });
    }
    for (const m of c.machines.filter(m => m.below_floor)) {
      const b = below.insertRow(); b.dataset.machine = m.id;
      cell(b, m.id, "mono"); cell(b, m.hostname); cell(b, c.machine_class); cell(b, m.release, "error"); cell(b, c.min_release); cell(b, m.state);
    }
  }
  const packages = $("packages").tBodies[0]; packages.replaceChildren();
  const running = new Map();
  for (const m of data.machines) if (m.state !== "retired") running.set(m.package_digest, (running.get(m.package_digest) || 0) + 1);
  const digests = [...new Set([...data.allowed, ...running.keys()])];
  for (const digest of digests) {
    const row = packages.insertRow(); row.dataset.digest = digest;
    cell(row, digest, "mono digest");
    cell(row, releaseOf.get(digest));
    cell(row, "—"); cell(row, "—");   // size and signers: the controller holds digests only (docs/fleet.md)
    const allowed = data.allowed.includes(digest);
    cell(row, allowed ? "yes" : "no", allowed ? "allowed" : "allowed error");
    cell(row, running.get(digest) || 0);
    const td = row.insertCell();
    if (may("admin") && allowed) button(td, "Withdraw…", async () => {
      const r = await ask({ title: `Withdraw ${short(digest)}`, confirm: "Withdraw", danger: true,
        warning: `Machines running it are drained (${running.get(digest) || 0} now) and it may not enroll again.` });
      if (r) await act(`/api/v1/packages/allowed/${digest}/withdraw`, { reason: r.reason }, refreshAll);
    }, true);
  }
}

$("allow-package").addEventListener("click", async () => {
  const r = await ask({ title: "Allow a package", confirm: "Allow", fields: [{ name: "digest", label: "Digest (sha256 hex)" }] });
  if (r) await act("/api/v1/packages/allowed", { digest: r.values.digest, reason: r.reason }, refreshReleases);
});

// ---- rollout (GET /api/v1/rollouts/latest; 404: none yet)
async function refreshRollout() {
  data.rollout = await api("GET", "/api/v1/rollouts/latest", undefined, true);
  renderRollout();
}

// A machine's step: pending → draining → rebooting → returning → done; failed (it halted the rollout) or skipped.
const finishedSteps = new Set(["done", "skipped"]);

function renderRollout() {
  const r = data.rollout;
  $("rollout-none").hidden = r !== null; $("rollout").hidden = r === null;
  if (r === null) return;
  $("rollout").dataset.state = r.state;
  $("rollout-summary").textContent = `Rollout ${r.id} of ${r.channel} to release ${r.release ?? "?"} (${short(r.digest)}): ${r.state}. ` +
    `Canary ${r.canary}, ${r.batch ? "batches of " + r.batch : "at most " + r.max_unavailable + "% unavailable"}, drain ${r.drain_seconds} s, ` +
    `at least ${r.per_location_min} serving per location. Started ${time(r.created_at)}, updated ${time(r.updated_at)}.`;
  const done = r.done ?? r.machines.filter(m => finishedSteps.has(m.step)).length, total = r.total ?? r.machines.length;
  $("rollout-progress").max = Math.max(1, total); $("rollout-progress").value = done;
  $("rollout-progress-text").textContent = `${done} of ${total} machines done`;
  $("rollout-halt").textContent = r.halt_reason ? "Halted: " + r.halt_reason : "";
  const actions = $("rollout-actions"); actions.replaceChildren();
  if (may("operator")) {
    const verb = (name, danger, warning) => button(actions, name[0].toUpperCase() + name.slice(1) + "…", async () => {
      const a = await ask({ title: `${name[0].toUpperCase() + name.slice(1)} rollout ${r.id}`, confirm: name[0].toUpperCase() + name.slice(1), danger, warning });
      // By id: a rollout started meanwhile is not the one staff looked at (the controller answers 409).
      if (a) await act(`/api/v1/rollouts/${encodeURIComponent(r.id)}/${name}`, { reason: a.reason }, refreshRollout);
    }, danger);
    if (r.state === "running") verb("pause", false);
    if (r.state === "paused" || r.state === "halted") verb("resume", false);
    if (r.state === "running" || r.state === "paused" || r.state === "halted")
      verb("abort", true, "The rollout stops for good; machines already on the new release stay on it.");
  }
  const tbody = $("rollout-machines").tBodies[0]; tbody.replaceChildren();
  for (const m of r.machines) {
    const row = tbody.insertRow(); row.dataset.machine = m.machine_id; row.dataset.step = m.step;
    cell(row, m.machine_id.slice(0, 12) + "…" + (m.canary ? " (canary)" : ""), "mono").title = m.machine_id;
    cell(row, m.hostname, "hostname"); cell(row, m.location);
    cell(row, m.step, "step" + (m.step === "failed" ? " error" : ""));
    cell(row, time(m.started_at)); cell(row, time(m.finished_at));
    cell(row, m.started_at && m.finished_at ? duration(Math.round((Date.parse(m.finished_at) - Date.parse(m.started_at)) / 1000)) : null);
    cell(row, short(m.from_sha256), "mono"); cell(row, short(m.booted_sha256), "mono"); cell(row, m.reason);
  }
  if (view === "rollout") drawRollout();
}

// POST /api/v1/rollouts (admins): a channel to a release or digest, canary first, then batches.
$("rollout-start").addEventListener("click", async () => {
  const r = await ask({ title: "Start a rollout", confirm: "Start rollout", danger: true,
    warning: "Machines on the channel are drained and rebooted into the target, canary first, then batch by batch.",
    fields: [{ name: "channel", label: "Channel", value: "stable" }, { name: "release", label: "Release (or a digest below)" },
             { name: "digest", label: "Digest (sha256)" }, { name: "canary", label: "Canary machines", value: "1" },
             { name: "batch", label: "Batch size", value: "1" }, { name: "drain_seconds", label: "Drain seconds", value: "60" },
             { name: "per_location_min", label: "Serving per location at least", value: "0" }] });
  if (!r) return;
  const v = r.values, number = text => text === "" ? null : Number(text);
  await act("/api/v1/rollouts", { channel: v.channel, release: number(v.release), digest: v.digest || null, canary: number(v.canary),
    batch: number(v.batch), drain_seconds: number(v.drain_seconds), per_location_min: number(v.per_location_min), reason: r.reason }, refreshAll);
});

// The rollout's timeline: machines started and finished over time.
function drawRollout() {
  const r = data.rollout;
  if (!r || typeof uPlot === "undefined" || $("view-rollout").hidden) return;
  const points = [];
  for (const m of r.machines) {
    if (m.started_at) points.push([Date.parse(m.started_at) / 1000, 1, 0]);
    if (m.finished_at) points.push([Date.parse(m.finished_at) / 1000, 0, 1]);
  }
  points.sort((a, b) => a[0] - b[0]);
  const xs = [Date.parse(r.created_at) / 1000], started = [0], finished = [0];
  for (const [t, s, f] of points) { xs.push(t); started.push(started[started.length - 1] + s); finished.push(finished[finished.length - 1] + f); }
  xs.push(Math.max(xs[xs.length - 1], Date.parse(r.updated_at) / 1000)); started.push(started[started.length - 1]); finished.push(finished[finished.length - 1]);
  const stepped = uPlot.paths.stepped({ align: 1 });
  plot("plot-rollout", {
    title: "Rollout timeline",
    scales: { x: { time: true }, y: { range: () => [0, Math.max(1, data.rollout ? data.rollout.machines.length : 1)] } },
    axes: [{}, { label: "machines" }],
    series: [{}, { label: "started", stroke: "#a60", width: 2, paths: stepped }, { label: "done", stroke: "#0a6", width: 2, paths: stepped }],
  }, [xs, started, finished]);
}

// ---- audit (server-side paging: before=ID of the page's last entry)
let auditPages = [null];
const auditSize = 50;
function auditQuery(before) {
  const q = new URLSearchParams({ limit: auditSize });
  if (before) q.set("before", before);
  for (const k of ["actor", "action", "target"]) if ($("audit-" + k).value.trim()) q.set(k, $("audit-" + k).value.trim());
  return q;
}
async function loadAudit(before) {
  if (!may("admin")) return;
  const entries = await api("GET", "/api/v1/audit?" + auditQuery(before));
  const tbody = $("audit").tBodies[0]; tbody.replaceChildren();
  for (const a of entries) {
    const row = tbody.insertRow(); row.dataset.id = a.id;
    cell(row, time(a.at)); cell(row, a.actor, "actor"); cell(row, a.action, "action"); cell(row, a.target, "target mono");
    cell(row, a.reason, "reason"); cell(row, a.detail, "detail");
  }
  $("audit-older").disabled = entries.length < auditSize;
  $("audit-older").dataset.before = entries.length ? entries[entries.length - 1].id : "";
  $("audit-newest").disabled = auditPages.length === 1;
  $("audit-page").textContent = `page ${auditPages.length}, ${entries.length} entries`;
}
$("audit-search").addEventListener("submit", e => { e.preventDefault(); auditPages = [null]; loadAudit(null).catch(showError); });
$("audit-older").addEventListener("click", () => {
  const before = $("audit-older").dataset.before; if (!before) return;
  auditPages.push(before); loadAudit(before).catch(showError);
});
$("audit-newest").addEventListener("click", () => { auditPages = [null]; loadAudit(null).catch(showError); });

// ---- staff and tokens (admins)
async function refreshStaff() {
  if (!may("admin")) return;
  const [staff, tokens] = await Promise.all([api("GET", "/api/v1/staff"), api("GET", "/api/v1/tokens")]);
  const tbody = $("staff").tBodies[0]; tbody.replaceChildren();
  for (const s of staff) {
    const row = tbody.insertRow(); row.dataset.username = s.username;
    cell(row, s.username);
    const roleCell = row.insertCell(); roleCell.className = "role";
    const select = document.createElement("select"); select.name = "role";
    for (const r of Object.keys(ranks)) option(select, r);
    select.value = s.role; select.disabled = s.username === me.username;
    select.addEventListener("change", async () => {
      const a = await ask({ title: `Make ${s.username} ${select.value}`, confirm: "Change role" });
      if (a) await act(`/api/v1/staff/${encodeURIComponent(s.username)}/role`, { role: select.value, reason: a.reason }, refreshStaff);
      else select.value = s.role;
    });
    roleCell.append(select);
    cell(row, s.totp_enabled ? "enabled" : "not enrolled", "totp"); cell(row, s.active ? "yes" : "no", "active"); cell(row, s.locked ? "locked" : "no", "locked");
    const td = row.insertCell();
    const path = verb => `/api/v1/staff/${encodeURIComponent(s.username)}/${verb}`;
    if (s.username !== me.username && s.active) button(td, "Deactivate…", async () => {
      const a = await ask({ title: `Deactivate ${s.username}`, confirm: "Deactivate", danger: true,
        warning: "Every session and API token of this staff member is revoked." });
      if (a) await act(path("deactivate"), { reason: a.reason }, refreshStaff);
    }, true);
    if (!s.active) button(td, "Activate…", async () => {
      const a = await ask({ title: `Activate ${s.username}`, confirm: "Activate" });
      if (a) await act(path("activate"), { reason: a.reason }, refreshStaff);
    });
    if (s.locked) button(td, "Unlock…", async () => {
      const a = await ask({ title: `Unlock ${s.username}`, confirm: "Unlock" });
      if (a) await act(path("unlock"), { reason: a.reason }, refreshStaff);
    });
  }
  const tt = $("tokens").tBodies[0]; tt.replaceChildren();
  for (const t of tokens) {
    const row = tt.insertRow(); row.dataset.token = t.id;
    cell(row, t.id, "mono"); cell(row, t.kind); cell(row, t.name); cell(row, t.owner); cell(row, t.role);
    cell(row, time(t.created_at)); cell(row, t.expires_at ? time(t.expires_at) : "never"); cell(row, time(t.last_used_at));
    button(row.insertCell(), "Revoke…", async () => {
      const a = await ask({ title: `Revoke ${t.kind} token ${t.name}`, confirm: "Revoke", danger: true, warning: "It is refused from its next request on." });
      if (!a) return;
      $("action-error").textContent = "";
      try { await api("DELETE", `/api/v1/tokens/${encodeURIComponent(t.id)}?reason=${encodeURIComponent(a.reason)}`); await refreshStaff(); }
      catch (e) { showError(e); }
    }, true);
  }
}

$("staff-create").addEventListener("submit", async e => {
  e.preventDefault();
  $("action-error").textContent = "";
  try {
    await api("POST", "/api/v1/staff", { username: $("new-staff-username").value, password: $("new-staff-password").value, role: $("new-staff-role").value });
    $("new-staff-username").value = ""; $("new-staff-password").value = "";
    await refreshStaff();
  } catch (err) { showError(err); }
});
