// One run: its health, its ranks' progress, its checkpoints as charts and tables, and the checkpoint-now button.
import { call, path } from "./api.js";
import { $, cell, showOnly } from "./dom.js";
import { bytes, seconds, ago, age, secondsSince, localTime, number, stateLabel } from "./format.js";
import { timeSeries } from "./charts.js";

const unix = (iso) => Date.parse(iso) / 1000;

export async function showRun(tenant, run) {
  const [view, history, progress] = await Promise.all([
    call("GET", path("runs", tenant, run)),
    call("GET", path("runs", tenant, run, "history")),
    call("GET", path("runs", tenant, run, "progress")),
  ]);
  showOnly("run-view");
  showHealth(view);
  showTables(view);
  showCharts(history.history.filter((h) => h.kind === "save"), progress.progress);
}

function showHealth(view) {
  const health = view.health;
  $("run-name").textContent = view.run;
  $("run-state").className = `state ${health.state}`;
  $("run-state").textContent = stateLabel(health.state);
  $("run-detail").textContent = health.detail;
  const missing = health.missing_ranks;
  $("missing").hidden = missing.length === 0;
  $("missing").textContent = missing.length === 0 ? "" : "Missing: " + missing.map((m) => `rank ${m.rank} (silent ${age(secondsSince(m.since_utc))}, since ${localTime(m.since_utc)})`).join("; ");
  $("run-iteration").textContent = health.iteration === null ? "–" : health.iteration.toLocaleString();
  $("run-loss").textContent = number(health.loss);
  $("run-step").textContent = seconds(health.step_seconds);
  $("run-heartbeat").textContent = ago(health.last_heartbeat_utc);
  const last = view.checkpoints.find((c) => c.last);
  $("run-last").textContent = last ? `${last.name}, ${ago(last.committed_utc)}` : "none";
  $("run-retained").textContent = bytes(view.retained_bytes);
  const p = view.policy;
  $("run-policy").textContent = `policy: every ${p.period} iterations, max_iter ${p.max_iter ?? "none"}, keep ${p.max_to_keep ?? "all"}, prefix ${p.file_prefix} · attempt ${view.epoch} · hosted by ${view.hosted_by}`;
  $("request").textContent = view.checkpoint_request ? `requested: ${view.checkpoint_request}` : "";
}

function showTables(view) {
  const pending = $("pending").tBodies[0];
  pending.replaceChildren();
  for (const c of view.pending) {
    const row = pending.insertRow();
    row.dataset.name = c.name;
    cell(row, c.name);
    cell(row, c.epoch, "num");
    cell(row, age(secondsSince(c.started_utc)), "num");
    cell(row, `${c.ranks_reported} of ${c.world_size}`);
    cell(row, c.ranks_missing.length === 0 ? "committing" : "rank " + c.ranks_missing.slice(0, 16).join(", ") + (c.ranks_missing.length > 16 ? ", …" : ""));
  }
  if (view.pending.length === 0) cell(pending.insertRow(), "nothing pending").colSpan = 5;
  const catalog = $("catalog").tBodies[0];
  catalog.replaceChildren();
  for (const c of [...view.checkpoints].reverse()) {
    const row = catalog.insertRow();
    row.dataset.name = c.name;
    cell(row, c.last ? "★" : "");
    cell(row, c.name);
    cell(row, c.iteration, "num");
    cell(row, bytes(c.bytes), "num");
    cell(row, c.world_size, "num");
    cell(row, `${localTime(c.committed_utc)} (${ago(c.committed_utc)})`);
  }
}

function showCharts(saves, progress) {
  const progressTimes = progress.map((p) => unix(p.at_utc));
  timeSeries("chart-loss", "loss", progressTimes, [{ label: "loss", values: progress.map((p) => p.loss) }],
    { emptyText: "no heartbeat with a loss yet" });
  timeSeries("chart-iteration", "iteration", progressTimes, [{ label: "iteration", values: progress.map((p) => p.iteration) }],
    { emptyText: "no heartbeat yet" });
  const saveTimes = saves.map((s) => unix(s.at_utc));
  timeSeries("chart-save", "seconds", saveTimes, [
    { label: "save, first Begin to commit", unit: "s", values: saves.map((s) => s.seconds) },
    { label: "slowest rank", unit: "s", values: saves.map((s) => s.rank_seconds?.max ?? null) },
  ], { log: true, emptyText: "no checkpoint committed yet" });
  timeSeries("chart-throughput", "MB/s", saveTimes, [{ label: "throughput", unit: "MB/s", values: saves.map((s) => s.mb_per_s) }],
    { log: true, emptyText: "no checkpoint committed yet" });
  timeSeries("chart-stall", "seconds", saveTimes, [{ label: "stall", unit: "s", values: saves.map((s) => s.stall_seconds ?? s.rank_seconds?.max ?? null), bars: true }],
    { emptyText: "no checkpoint committed yet" });
}

export async function requestCheckpoint(tenant, run) {
  const answer = await call("POST", path("runs", tenant, run, "checkpoint-now"), { reason: "requested from the console" });
  $("request").textContent = `requested: ${answer.requested}`;
}
