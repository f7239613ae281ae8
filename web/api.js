// The one way the panel talks to the server: JSON over the admin API, with the CSRF token.
let csrfToken = "";

export class ApiError extends Error {
  constructor(status, detail, headers) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
    this.detail = detail;
    this.headers = headers;
  }
}

export function setCsrfToken(token) {
  csrfToken = token || "";
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data?.detail ?? response.statusText, response.headers);
  return data;
}

export function describeError(error) {
  if (!(error instanceof ApiError)) return String(error);
  if (Array.isArray(error.detail)) {
    return error.detail.map((d) => `${(d.loc || []).filter((p) => p !== "body").join(".")}: ${d.msg}`).join("; ");
  }
  return String(error.detail);
}
