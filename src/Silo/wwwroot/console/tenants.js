// The operator's list of tenants, and a tenant's runs: paged, so that a tenant of thousands of runs loads one page at a time.
import { call, path } from "./api.js";
import { $, cell, link, badge, usage, showOnly } from "./dom.js";
import { bytes, ago, age, secondsSince, stateLabel } from "./format.js";

export const PageSize = 50;

// Retained bytes against the tenant's limit (null: unlimited), as a bar and in words.
function retained(bytesUsed, limit) {
  return usage(bytesUsed, limit, `${bytes(bytesUsed)} of ${limit === null ? "unlimited" : bytes(limit)}`);
}

export async function showTenants() {
  const answer = await call("GET", "/tenants");
  const body = $("tenants").tBodies[0];
  body.replaceChildren();
  for (const t of answer.tenants) {
    const row = body.insertRow();
    row.dataset.tenant = t.tenant;
    cell(row, link(`/tenants/${encodeURIComponent(t.tenant)}`, t.tenant));
    cell(row, t.runs.toLocaleString(), "num");
    cell(row, retained(t.retained_bytes, t.max_retained_bytes));
  }
  showOnly("tenants-view");
}

export async function showTenant(tenant, offset) {
  const page = await call("GET", `${path("tenants", tenant, "runs")}?offset=${offset}&limit=${PageSize}`);
  $("tenant-name").textContent = page.tenant;
  $("tenant-runs").textContent = page.max_runs === null ? page.total_runs.toLocaleString() : `${page.total_runs.toLocaleString()} of ${page.max_runs.toLocaleString()}`;
  $("tenant-retained").replaceChildren(retained(page.retained_bytes, page.max_retained_bytes));
  const counts = {};
  const body = $("runs").tBodies[0];
  body.replaceChildren();
  for (const r of page.runs) {
    counts[r.state] = (counts[r.state] || 0) + 1;
    const row = body.insertRow();
    row.dataset.run = r.run;
    row.dataset.state = r.state;
    cell(row, link(`/runs/${encodeURIComponent(tenant)}/${encodeURIComponent(r.run)}`, r.run));
    cell(row, badge(r.state, stateLabel(r.state)));
    cell(row, r.last);
    cell(row, r.last_committed_utc ? age(secondsSince(r.last_committed_utc)) : "–", "num");
    cell(row, bytes(r.retained_bytes));
    cell(row, r.commits_last_hour, "num");
    cell(row, r.iteration === null ? "–" : r.iteration.toLocaleString(), "num");
    cell(row, r.last_heartbeat_utc ? ago(r.last_heartbeat_utc) : "–", "num");
  }
  $("tenant-states").textContent = Object.entries(counts).map(([state, n]) => `${n} ${stateLabel(state)}`).join(", ") || "no runs";
  const last = page.offset + page.runs.length;
  $("page").textContent = page.total_runs === 0 ? "no runs" : `runs ${(page.offset + 1).toLocaleString()}–${last.toLocaleString()} of ${page.total_runs.toLocaleString()}`;
  $("previous").disabled = page.offset === 0;
  $("next").disabled = last >= page.total_runs;
  showOnly("tenant-view");
}
