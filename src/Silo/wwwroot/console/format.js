// Numbers and times for people: sizes in binary units, durations and ages in the largest sensible unit.

export function bytes(count) {
  if (count === null || count === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = count;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0)} ${units[unit]}`;
}

export function seconds(value) {
  if (value === null || value === undefined) return "–";
  if (value < 1) return `${(value * 1000).toFixed(value < 0.01 ? 2 : 0)} ms`;
  if (value < 90) return `${value.toFixed(value < 10 ? 2 : 1)} s`;
  return age(value);
}

// "42 s", "7 min", "3 h", "2 d".
export function age(totalSeconds) {
  if (totalSeconds === null || totalSeconds === undefined) return "–";
  const s = Math.max(0, totalSeconds);
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

// Seconds from an ISO time to now; null for none.
export function secondsSince(iso, now = Date.now()) {
  return iso ? (now - Date.parse(iso)) / 1000 : null;
}

export function ago(iso) {
  return iso ? `${age(secondsSince(iso))} ago` : "never";
}

export function localTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "–";
}

export function number(value, digits = 4) {
  if (value === null || value === undefined) return "–";
  return Math.abs(value) >= 1000 ? value.toLocaleString() : Number(value.toPrecision(digits)).toString();
}

// "healthy" -> "healthy", "rank_missing" -> "rank missing".
export function stateLabel(state) {
  return state.replace("_", " ");
}
