// The operator console: routes (/, /tenants/{tenant}, /runs/{tenant}/{run}) kept in the address bar, a sign-in with a tenant
// token, and a refresh of the open view every two seconds.
import { adoptTokenFromUrl, token, setToken, tokenTenant } from "./api.js";
import { $, showOnly } from "./dom.js";
import { showTenants, showTenant, PageSize } from "./tenants.js";
import { showRun, requestCheckpoint } from "./run.js";

const RefreshMilliseconds = 2000;
let offset = 0;

// The route of the address bar: { view, tenant, run }.
function route() {
  const parts = window.location.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "runs" && parts.length === 3) return { view: "run", tenant: parts[1], run: parts[2] };
  if (parts[0] === "tenants" && parts.length === 2) return { view: "tenant", tenant: parts[1] };
  const own = tokenTenant();
  return own && own !== "*" ? { view: "tenant", tenant: own } : { view: "tenants" };
}

function navigate(href) {
  if (href !== window.location.pathname) {
    window.history.pushState(null, "", href);
    offset = 0;
  }
  refresh();
}

function crumbs(current) {
  const nav = $("crumbs");
  nav.replaceChildren();
  const add = (href, text) => {
    if (nav.childElementCount > 0) nav.append(Object.assign(document.createElement("span"), { className: "sep", textContent: "/" }));
    nav.append(href ? Object.assign(document.createElement("a"), { href, textContent: text }) : document.createTextNode(text));
  };
  if (tokenTenant() === "*") add("/", "tenants");
  if (current.tenant) add(current.view === "run" ? `/tenants/${encodeURIComponent(current.tenant)}` : null, current.tenant);
  if (current.run) add(null, current.run);
  for (const a of nav.querySelectorAll("a")) a.dataset.link = "";
}

function showError(error) {
  $("error").textContent = error ? String(error.message || error) : "";
  $("error").hidden = !error;
}

let refreshing = false;
let again = false;
async function refresh() {
  if (!token()) return;
  if (refreshing) { again = true; return; } // a click during a refresh is answered right after it
  refreshing = true;
  const current = route();
  crumbs(current);
  $("tenant").value = current.tenant || "";
  document.title = current.run ? `${current.run} · ${current.tenant}` : current.tenant ? `${current.tenant} · checkpoints` : "Checkpoints";
  try {
    if (current.view === "run") await showRun(current.tenant, current.run);
    else if (current.view === "tenant") await showTenant(current.tenant, offset);
    else await showTenants();
    showError(null);
    $("live").classList.remove("stale");
  } catch (error) {
    showError(error);
    $("live").classList.add("stale");
    if (error.status === 403 || error.status === 404) showOnly(null); // nothing of what the caller may not, or no longer can, see
  } finally {
    refreshing = false;
    if (again) { again = false; refresh(); }
  }
}

document.addEventListener("click", (event) => {
  const anchor = event.target.closest("a[data-link]");
  if (!anchor || event.ctrlKey || event.metaKey || event.shiftKey) return;
  event.preventDefault();
  navigate(anchor.getAttribute("href"));
});
window.addEventListener("popstate", () => { offset = 0; refresh(); });

$("sign-in").addEventListener("submit", (event) => {
  event.preventDefault();
  const given = $("token").value.trim();
  if (given) setToken(given);
  $("token").value = "";
  const tenant = $("tenant").value.trim();
  navigate(tenant ? `/tenants/${encodeURIComponent(tenant)}` : "/");
});
$("previous").addEventListener("click", () => { offset = Math.max(0, offset - PageSize); refresh(); });
$("next").addEventListener("click", () => { offset += PageSize; refresh(); });
$("checkpoint-now").addEventListener("click", async () => {
  const current = route();
  try { await requestCheckpoint(current.tenant, current.run); } catch (error) { showError(error); }
});

adoptTokenFromUrl();
refresh();
setInterval(refresh, RefreshMilliseconds);
