// Shared by the agent desktop and the wallboard: text catalogs, the session, the
// REST helper and the live-events socket with automatic reconnect.

export const LANGUAGES = ["en", "zh-CN"];
const SESSION_KEY = "telportal.session";
const LANG_KEY = "telportal.lang";

// --- text ---------------------------------------------------------------------------

let catalog = {};
let fallback = {};
let currentLang = "en";

export function t(key, params = {}) {
  const text = catalog[key] ?? fallback[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

export function language() {
  return currentLang;
}

function browserLanguage() {
  const wanted = navigator.languages?.length ? navigator.languages : [navigator.language || "en"];
  for (const tag of wanted) {
    if (tag.toLowerCase().startsWith("zh")) return "zh-CN";
    if (tag.toLowerCase().startsWith("en")) return "en";
  }
  return "en";
}

function langKey(user) {
  return user ? `${LANG_KEY}.${user}` : LANG_KEY;
}

// The user's stored choice, else the last choice made on this browser, else the browser's.
export function preferredLanguage(user) {
  const stored = (user && localStorage.getItem(langKey(user))) || localStorage.getItem(LANG_KEY);
  return LANGUAGES.includes(stored) ? stored : browserLanguage();
}

async function loadCatalog(lang) {
  const response = await fetch(`/i18n/${lang}.json`);
  if (!response.ok) throw new Error(`catalog ${lang}: ${response.status}`);
  return response.json();
}

export async function setLanguage(lang, user) {
  if (!LANGUAGES.includes(lang)) lang = "en";
  if (!Object.keys(fallback).length) fallback = await loadCatalog("en");
  catalog = lang === "en" ? fallback : await loadCatalog(lang);
  currentLang = lang;
  localStorage.setItem(LANG_KEY, lang);
  if (user) localStorage.setItem(langKey(user), lang);
  document.documentElement.lang = lang;
  translate(document);
  for (const select of document.querySelectorAll("select.lang")) select.value = lang;
  document.dispatchEvent(new CustomEvent("telportal:language", { detail: lang }));
}

// Elements name their text with data-i18n (content), data-i18n-placeholder, data-i18n-title.
export function translate(root) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
  const title = document.querySelector("title[data-i18n-doc]");
  if (title) document.title = `${t(title.dataset.i18nDoc)} · ${t("app.name")}`;
}

export function bindLanguageSelect(select, currentUser) {
  select.replaceChildren(
    ...LANGUAGES.map((lang) => new Option(lang === "en" ? "English" : "简体中文", lang)),
  );
  select.value = currentLang;
  select.addEventListener("change", () => setLanguage(select.value, currentUser()));
}

// --- session ------------------------------------------------------------------------

export function loadSession() {
  try {
    const session = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    if (session && Date.parse(session.expires_at) > Date.now()) return session;
  } catch {
    // a damaged entry is the same as none
  }
  sessionStorage.removeItem(SESSION_KEY);
  return null;
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function signIn(username, password) {
  const answer = await request("POST", "/api/v1/auth/token", null, { username, password });
  const session = {
    token: answer.access_token,
    expires_at: answer.expires_at,
    role: answer.role,
    tenant_id: answer.tenant_id,
    username,
  };
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  return session;
}

export async function signOutSession(session) {
  sessionStorage.removeItem(SESSION_KEY);
  try {
    await request("POST", "/api/v1/auth/logout", session.token);
  } catch {
    // the token may already be gone; the page forgets it either way
  }
}

async function request(method, path, token, body) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "network", t("error.network"));
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const message = data?.message || t("error.generic", { status: response.status });
    throw new ApiError(response.status, data?.code || "error", message);
  }
  return data;
}

// An API bound to one session; a 401 means the session is over.
export function api(session, onUnauthorized) {
  return async (method, path, body) => {
    try {
      return await request(method, `/api/v1${path}`, session.token, body);
    } catch (err) {
      if (err.status === 401) onUnauthorized();
      throw err;
    }
  };
}

// --- live events --------------------------------------------------------------------

export const CLOSE_UNAUTHORIZED = 4401;

// Keeps one socket open to /api/v1/events, reconnecting with a growing pause.
// `onEvent(obj)` receives every frame; `onStatus(state, retrySeconds)` reports
// "connecting", "online" (after the hello frame: the caller resyncs then) and "offline".
//
// With `acks`, frames that carry a `delivery` id (a screen pop) are acknowledged once
// `onEvent` has handled them, so the server rings the phone only after the page shows
// the pop.
export class EventSocket {
  constructor(token, { onEvent, onStatus, onUnauthorized, acks = false }) {
    this.token = token;
    this.acks = acks;
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.onUnauthorized = onUnauthorized;
    this.attempt = 0;
    this.stopped = false;
    this.timer = null;
    this.ws = null;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000);
    this.ws = null;
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const url =
      `${scheme}://${location.host}/api/v1/events?token=${encodeURIComponent(this.token)}` +
      (this.acks ? "&ack=1" : "");
    this.onStatus("connecting");
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.addEventListener("message", (msg) => {
      let obj;
      try {
        obj = JSON.parse(msg.data);
      } catch {
        return;
      }
      if (obj.type === "hello") {
        this.attempt = 0;
        this.onStatus("online");
      }
      try {
        this.onEvent(obj);
      } finally {
        // The event is on the page (the DOM is updated synchronously): say so.
        if (this.acks && typeof obj.delivery === "string" && ws.readyState === WebSocket.OPEN) {
          ws.send(JSON.stringify({ type: "ack", delivery: obj.delivery }));
        }
      }
    });
    ws.addEventListener("close", (ev) => {
      if (this.ws !== ws || this.stopped) return;
      this.ws = null;
      if (ev.code === CLOSE_UNAUTHORIZED) {
        this.onStatus("offline", 0);
        this.onUnauthorized();
        return;
      }
      const delay = Math.min(15, 2 ** this.attempt);
      this.attempt += 1;
      this.onStatus("offline", delay);
      this.timer = setTimeout(() => this.connect(), delay * 1000);
    });
  }
}

// The small connection indicator both pages show.
export function showConnection(el, state, seconds) {
  el.dataset.state = state;
  const key = { connecting: "conn.connecting", online: "conn.online" }[state] ?? "conn.offline";
  el.dataset.i18nKey = key;
  el.dataset.seconds = seconds ?? 0;
  el.querySelector(".conn-text").textContent = t(key, { seconds: seconds ?? 0 });
}

export function refreshConnection(el) {
  if (!el.dataset.i18nKey) return;
  el.querySelector(".conn-text").textContent = t(el.dataset.i18nKey, {
    seconds: el.dataset.seconds,
  });
}

// --- sign-in form -------------------------------------------------------------------

// Wires the form in `root`; calls `onSession(session)` once signed in.
export function bindSignInForm(form, onSession) {
  const error = form.querySelector(".form-error");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    error.textContent = t("signin.busy");
    try {
      const session = await signIn(form.username.value.trim(), form.password.value);
      form.password.value = "";
      error.textContent = "";
      onSession(session);
    } catch (err) {
      error.textContent = t("signin.failed", { message: err.message });
    } finally {
      button.disabled = false;
    }
  });
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

// --- time ---------------------------------------------------------------------------
// Times are shown in the browser's own time zone (Intl's default), in the page's language.

export function formatDateTime(value, { date = true } = {}) {
  const when = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(when.getTime())) return "";
  const options = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  if (date) Object.assign(options, { year: "numeric", month: "short", day: "numeric" });
  return new Intl.DateTimeFormat(currentLang, options).format(when);
}

// A stopwatch reading: 0:07, 12:30, 1:02:03.
export function formatClock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

// A span in words, to the nearest unit that matters: "45 s", "12 min", "3 h 5 min".
export function formatSpan(seconds) {
  const s = Math.max(0, Math.round(Math.abs(seconds)));
  if (s < 60) return t("time.seconds", { n: s });
  const minutes = Math.floor(s / 60);
  if (minutes < 60) return t("time.minutes", { n: minutes });
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return t("time.hours", { h: hours, m: minutes % 60 });
  return t("time.days", { d: Math.floor(hours / 24), h: hours % 24 });
}

// --- notices ------------------------------------------------------------------------

// A non-blocking notice in `container` (a fixed corner of the page): it never moves
// anything, closes by itself after `seconds` and can be dismissed.
export function notify(container, text, { level = "info", seconds = 10, data = {} } = {}) {
  const close = el("button", { type: "button", title: t("notice.close") }, "×");
  const item = el(
    "div",
    { class: "notice", role: "status", dataset: { level, ...data } },
    el("span", { class: "text" }, text),
    close,
  );
  const remove = () => item.remove();
  close.addEventListener("click", remove);
  container.append(item);
  while (container.children.length > 4) container.firstElementChild.remove();
  setTimeout(remove, seconds * 1000);
  return item;
}
