// Signing in the way the mini-program does, and calling the public API with the bearer token.
//
// On a phone: wx.login() → code (WeChat's client), then POST /api/v1/auth/login {code}.
// Here: the fake WeChat server plays WeChat's part — POST <fake>/_mock/login-code {openid} → code.
// Its address comes from /demo/config.json (served only in demo mode). Nothing else is special.

const API = "/api/v1";
const KEY = "sandan.demo.session"; // per tab, so two tabs can be two people
let configPromise = null;

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `请求失败（HTTP ${status}）`);
    this.status = status;
    this.body = body;
    this.code = body && body.code;
  }
}

export function demoConfig() {
  if (!configPromise) {
    configPromise = fetch("/demo/config.json").then((r) => {
      if (!r.ok) throw new ApiError(r.status, null);
      return r.json();
    });
  }
  return configPromise;
}

async function parse(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function session() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) || "null");
  } catch {
    return null;
  }
}

function save(value) {
  if (value) sessionStorage.setItem(KEY, JSON.stringify(value));
  else sessionStorage.removeItem(KEY);
}

/** What wx.login() gives the mini-program: a one-time code for this WeChat user. */
export async function wxLogin(openid) {
  const { wechat_base_url: wechat } = await demoConfig();
  const response = await fetch(wechat.replace(/\/$/, "") + "/_mock/login-code", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ openid }),
  });
  const body = await parse(response);
  if (!response.ok) throw new ApiError(response.status, body);
  return body.code;
}

/** Sign in as a demo person; `mode` is which screens to show (resident, organization, secretary). */
export async function signIn(openid, mode) {
  const code = await wxLogin(openid);
  const response = await fetch(API + "/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ code }),
  });
  const body = await parse(response);
  if (!response.ok) throw new ApiError(response.status, body);
  const value = { openid, mode, access_token: body.access_token, refresh_token: body.refresh_token, user: body.user };
  save(value);
  return value;
}

export async function signOut() {
  const current = session();
  save(null);
  if (current) {
    await fetch(API + "/auth/logout", {
      method: "POST",
      headers: { Authorization: "Bearer " + current.access_token },
    }).catch(() => {});
  }
}

// One refresh at a time: calls that find the access token expired together ("我的" reads /me and
// the inbox at once) wait for the same one. The API takes a refresh token presented twice for a stolen copy
// and ends the session.
let refreshing = null;

function refresh() {
  if (!refreshing) refreshing = refreshOnce().finally(() => (refreshing = null));
  return refreshing;
}

async function refreshOnce() {
  const current = session();
  const response = await fetch(API + "/auth/refresh", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ refresh_token: current.refresh_token }),
  });
  const body = await parse(response);
  if (!response.ok) {
    save(null);
    throw new ApiError(response.status, body);
  }
  save({ ...current, access_token: body.access_token, refresh_token: body.refresh_token, user: body.user || current.user });
}

async function send(method, path, { json, form, headers } = {}) {
  const current = session();
  const all = { ...(headers || {}) };
  if (current) all.Authorization = "Bearer " + current.access_token;
  let body;
  if (json !== undefined) {
    all["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form) {
    body = form;
  }
  return fetch(path.startsWith("/api/") ? path : API + path, { method, headers: all, body });
}

/** Call the API signed in; refreshes once on token_expired like the mini-program does. */
export async function api(method, path, options = {}) {
  const sentWith = session() && session().access_token;
  let response = await send(method, path, options);
  if (response.status === 401 && session()) {
    const body = await parse(response.clone());
    if (body && body.code === "token_expired") {
      // Refreshed meanwhile by another call (its answer came first): the new token, not another refresh.
      if (session().access_token === sentWith) await refresh();
      response = await send(method, path, options);
    }
  }
  if (options.blob) {
    if (!response.ok) throw new ApiError(response.status, await parse(response));
    return response.blob();
  }
  const body = await parse(response);
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

export const get = (path, query) => {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) if (v !== undefined && v !== null && v !== "") params.set(k, v);
  const qs = params.toString();
  return api("GET", qs ? `${path}?${qs}` : path);
};
export const post = (path, json, headers) => api("POST", path, { json: json || {}, headers });

/** Upload one photo through POST /api/v1/uploads; returns {id, ...}. A retry of one photo's upload sends
 * the same key, so a lost answer never leaves the photo twice. */
export function upload(file, key = idempotencyKey()) {
  const form = new FormData();
  form.append("file", file);
  return api("POST", "/uploads", { form, headers: { "Idempotency-Key": key } });
}

/** An <img>-usable URL for a photo the API serves only with the bearer token. */
export async function photoUrl(url) {
  return URL.createObjectURL(await api("GET", url, { blob: true }));
}

export function idempotencyKey() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return "k" + Date.now().toString(36) + Math.random().toString(36).slice(2, 12);
}
