// The dashboard: plain fetch calls to the silo's /api/v1 with the tenant token kept in this browser session.
"use strict";

const session = window.sessionStorage;
const $ = (id) => document.getElementById(id);

function tokenFromUrl() {
  const params = new URLSearchParams(window.location.search);
  const token = params.get("token");
  if (token) {
    session.setItem("token", token);
    params.delete("token"); // keep the secret out of the address bar and the history
    const rest = params.toString();
    window.history.replaceState(null, "", window.location.pathname + (rest ? "?" + rest : ""));
  }
}

// "v1.<tenant>.<expiry>.<signature>": the tenant the token is for ("*" for the operator).
function tenantOf(token) {
  const parts = (token || "").split(".");
  return parts.length >= 4 ? parts.slice(1, parts.length - 2).join(".") : "";
}

async function api(method, path, body) {
  const response = await fetch("/api/v1" + path, {
    method,
    headers: { "Authorization": "Bearer " + session.getItem("token"), "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json();
  if (!response.ok) throw new Error(`${json.title || response.status}: ${json.detail || ""}`);
  return json;
}

function showError(error) {
  $("error").textContent = error ? String(error.message || error) : "";
  $("error").hidden = !error;
}

function cell(row, text, numeric) {
  const td = row.insertCell();
  td.textContent = text === null || text === undefined ? "-" : String(text);
  if (numeric) td.className = "num";
}

async function showTenant(tenant) {
  const view = await api("GET", `/tenants/${encodeURIComponent(tenant)}/runs`);
  $("tenant-name").textContent = view.tenant;
  $("tenant-limits").textContent = `limits: ${view.max_runs ?? "unlimited"} runs, ${view.max_retained_bytes?.toLocaleString() ?? "unlimited"} retained bytes`;
  const body = $("runs").tBodies[0];
  body.replaceChildren();
  for (const run of view.runs) {
    const row = body.insertRow();
    row.className = "run";
    row.dataset.run = run.run;
    cell(row, run.run);
    cell(row, run.retained_bytes.toLocaleString(), true);
    row.addEventListener("click", () => select(tenant, run.run));
  }
  $("tenant-view").hidden = false;
}

async function showRun(tenant, run) {
  const [view, history] = await Promise.all([
    api("GET", `/runs/${encodeURIComponent(tenant)}/${encodeURIComponent(run)}`),
    api("GET", `/runs/${encodeURIComponent(tenant)}/${encodeURIComponent(run)}/history`),
  ]);
  $("run-name").textContent = view.run;
  const p = view.policy;
  $("run-summary").textContent = `last checkpoint ${view.last ?? "none"} · epoch ${view.epoch} · period ${p.period}, max_iter ${p.max_iter ?? "-"}, max_to_keep ${p.max_to_keep ?? "-"}, prefix ${p.file_prefix} · retained ${view.retained_bytes.toLocaleString()} bytes`;
  $("request").textContent = view.checkpoint_request ? `requested: ${view.checkpoint_request}` : "";
  const catalog = $("catalog").tBodies[0];
  catalog.replaceChildren();
  for (const c of view.checkpoints) {
    const row = catalog.insertRow();
    row.dataset.name = c.name;
    cell(row, c.last ? "*" : "");
    cell(row, c.name);
    cell(row, c.iteration, true);
    cell(row, c.bytes.toLocaleString(), true);
    cell(row, c.world_size, true);
    cell(row, c.committed_utc.replace("T", " ").slice(0, 19));
  }
  const pending = $("pending").tBodies[0];
  pending.replaceChildren();
  for (const c of view.pending) {
    const row = pending.insertRow();
    cell(row, c.name); cell(row, c.epoch, true); cell(row, c.world_size, true); cell(row, c.ranks_reported, true);
  }
  drawChart(history.history.filter((h) => h.kind === "save").slice(-40));
  $("run-view").hidden = false;
}

function drawChart(saves) {
  const svg = $("chart");
  svg.replaceChildren();
  const ns = "http://www.w3.org/2000/svg";
  const max = Math.max(0.001, ...saves.map((s) => s.seconds));
  const width = 720 / Math.max(saves.length, 1);
  saves.forEach((s, i) => {
    const height = Math.max(1, (s.seconds / max) * 120);
    const bar = document.createElementNS(ns, "rect");
    Object.entries({ x: i * width + 2, y: 140 - height, width: Math.max(1, width - 4), height }).forEach(([k, v]) => bar.setAttribute(k, v));
    const title = document.createElementNS(ns, "title");
    title.textContent = `${s.name}: ${s.seconds} s, ${s.bytes.toLocaleString()} bytes, ${s.mb_per_s ?? "-"} MB/s`;
    bar.appendChild(title);
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", i * width + 2);
    label.setAttribute("y", 155);
    label.textContent = s.mb_per_s ?? "";
    svg.append(bar, label);
  });
}

async function select(tenant, run) {
  try {
    showError(null);
    session.setItem("run", run);
    await showRun(tenant, run);
  } catch (error) {
    showError(error);
  }
}

async function refresh() {
  const tenant = $("tenant").value.trim();
  if (!session.getItem("token") || !tenant) return;
  try {
    showError(null);
    await showTenant(tenant);
    const run = session.getItem("run");
    if (run) await showRun(tenant, run);
  } catch (error) {
    showError(error);
  }
}

$("sign-in").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = $("token").value.trim();
  if (token) session.setItem("token", token);
  const tenant = tenantOf(session.getItem("token"));
  if (!$("tenant").value.trim() && tenant !== "*") $("tenant").value = tenant;
  session.setItem("tenant", $("tenant").value.trim());
  refresh();
});

$("checkpoint-now").addEventListener("click", async () => {
  try {
    const [tenant, run] = $("run-name").textContent.split("/");
    const answer = await api("POST", `/runs/${encodeURIComponent(tenant)}/${encodeURIComponent(run)}/checkpoint-now`, { reason: "requested from the dashboard" });
    $("request").textContent = `requested: ${answer.requested}`;
  } catch (error) {
    showError(error);
  }
});

tokenFromUrl();
const known = tenantOf(session.getItem("token"));
$("tenant").value = session.getItem("tenant") || (known === "*" ? "" : known);
refresh();
setInterval(refresh, 2000); // the catalog follows commits as they happen
