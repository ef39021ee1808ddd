// Small DOM helpers shared by the views.

export const $ = (id) => document.getElementById(id);

export function cell(row, content, className) {
  const td = row.insertCell();
  if (content instanceof Node) td.append(content);
  else td.textContent = content === null || content === undefined ? "–" : String(content);
  if (className) td.className = className;
  return td;
}

export function link(href, text) {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = text;
  a.dataset.link = "";
  return a;
}

export function badge(state, label) {
  const span = document.createElement("span");
  span.className = `state ${state}`;
  span.textContent = label;
  return span;
}

// A bar of used out of limit (no limit: the bar is empty), followed by the text.
export function usage(used, limit, text) {
  const wrapper = document.createElement("span");
  const bar = document.createElement("span");
  bar.className = "bar";
  const fill = document.createElement("span");
  const share = limit ? Math.min(1, used / limit) : 0;
  fill.style.width = `${(share * 100).toFixed(1)}%`;
  if (share >= 0.9) bar.classList.add("full");
  bar.append(fill);
  wrapper.append(bar, document.createTextNode(text));
  return wrapper;
}

// Shows one view and hides the others; null hides them all.
export function showOnly(sectionId) {
  for (const id of ["tenants-view", "tenant-view", "run-view"]) $(id).hidden = id !== sectionId;
}
