// Time-series charts with uPlot (npm "uplot", pinned in package.json, served from /lib): named axes, a legend with units,
// time on x, and one y scale per chart so that one series' outlier does not flatten another's.

const palette = ["#3566c9", "#c2410c", "#1c7c45", "#7c3aed"];
const charts = new Map();

// Draws (or redraws in place) the chart in <figure id=figureId>: x = Unix seconds, series = [{ label, unit, values, points }].
export function timeSeries(figureId, yLabel, times, series, options = {}) {
  const figure = document.getElementById(figureId);
  figure.dataset.points = String(times.length);
  let empty = figure.querySelector(".empty");
  if (times.length === 0) {
    charts.get(figureId)?.destroy();
    charts.delete(figureId);
    if (!empty) {
      empty = document.createElement("div");
      empty.className = "empty";
      empty.textContent = options.emptyText || "no data yet";
      figure.append(empty);
    }
    return;
  }
  empty?.remove();
  const data = [times, ...series.map((s) => s.values)];
  const existing = charts.get(figureId);
  if (existing && existing.series.length === series.length + 1) {
    existing.setData(data);
    return;
  }
  existing?.destroy();
  const width = Math.max(380, figure.clientWidth - 16);
  const plot = new uPlot({
    width,
    height: 210,
    // A lone point gets a minute around it, not uPlot's default of years; a log y scale where one warm-up outlier would
    // flatten every later point on a linear one.
    scales: { x: { time: true, range: (u, min, max) => loneRange(u.data[0]) ?? [min, max] }, y: options.log ? { distr: 3, log: 10 } : { range: (u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] } },
    axes: [
      { label: "time", labelSize: 18, size: 40 },
      { label: yLabel, labelSize: 18, size: 62, values: (u, ticks) => ticks.map((t) => formatTick(t)) },
    ],
    series: [
      { label: "time", value: (u, v) => (v === null ? "–" : new Date(v * 1000).toLocaleTimeString()) },
      ...series.map((s, i) => ({
        label: s.unit ? `${s.label} (${s.unit})` : s.label,
        stroke: palette[i % palette.length],
        width: 2,
        points: { show: s.points ?? true, size: 6 },
        paths: s.bars ? uPlot.paths.bars({ size: [0.6, 40] }) : undefined,
        fill: s.bars ? palette[i % palette.length] + "55" : undefined,
        value: (u, v) => (v === null || v === undefined ? "–" : formatTick(v)),
      })),
    ],
  }, data, figure);
  charts.set(figureId, plot);
}

// A minute around the data when it spans under a second (uPlot alone pads one point by a thousand days).
function loneRange(times) {
  return times.length > 0 && times[times.length - 1] - times[0] < 1 ? [times[0] - 30, times[0] + 30] : null;
}

// A tick label or legend value; log scales leave some ticks unlabelled (null).
function formatTick(value) {
  if (value === null || value === undefined) return "";
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  if (magnitude >= 1e6) return (value / 1e6).toFixed(1) + "M";
  if (magnitude >= 1e3) return (value / 1e3).toFixed(1) + "k";
  return Number(value.toPrecision(3)).toString();
}
