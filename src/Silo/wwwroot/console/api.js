// The silo's /api/v1 with the token kept in this browser tab's session (never in the address bar or the history).

const session = window.sessionStorage;

export function adoptTokenFromUrl() {
  const params = new URLSearchParams(window.location.search);
  const token = params.get("token");
  if (!token) return;
  session.setItem("token", token);
  params.delete("token");
  const rest = params.toString();
  window.history.replaceState(null, "", window.location.pathname + (rest ? "?" + rest : ""));
}

export function token() { return session.getItem("token"); }
export function setToken(value) { session.setItem("token", value); }

// "v1.<tenant>.<expiry>.<signature>": the tenant the token is for ("*" for the operator).
export function tokenTenant() {
  const parts = (token() || "").split(".");
  return parts.length >= 4 ? parts.slice(1, parts.length - 2).join(".") : "";
}

export class ApiError extends Error {
  constructor(status, title, detail) {
    super(`${title || status}: ${detail || ""}`);
    this.status = status;
  }
}

export async function call(method, path, body) {
  const response = await fetch("/api/v1" + path, {
    method,
    headers: { "Authorization": "Bearer " + token(), "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, json.title, json.detail);
  return json;
}

export const path = (...parts) => "/" + parts.map(encodeURIComponent).join("/");
