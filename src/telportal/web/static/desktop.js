// The agent desktop: own ACD state, live events and the screen pop.
import {
  EventSocket,
  api,
  bindLanguageSelect,
  bindSignInForm,
  el,
  language,
  loadSession,
  preferredLanguage,
  refreshConnection,
  setLanguage,
  showConnection,
  signOutSession,
  t,
} from "./common.js";

const $ = (id) => document.getElementById(id);

const desk = {
  session: null,
  call: null, // the REST helper of the session
  agent: null, // the last AgentOut (GET /agents/me), kept current by `agent` events
  pop: null, // the last screen pop
  subjectEdited: false,
  socket: null,
};

function translated(prefix, value) {
  const key = `${prefix}.${value}`;
  const text = t(key);
  return text === key ? value : text;
}

// --- state --------------------------------------------------------------------------

function renderState() {
  const agent = desk.agent;
  const state = agent?.state ?? "unknown";
  const badge = $("state");
  badge.dataset.state = state;
  badge.textContent = translated("state", state);
  $("state-reason").textContent =
    agent?.reason && state === "not_ready"
      ? t("state.reason", { reason: translated("reason", agent.reason) })
      : "";
  const details = [];
  if (agent?.extension) details.push(t("state.extension", { extension: agent.extension }));
  if (agent) {
    const queues = agent.queues?.length ? agent.queues.join(", ") : t("state.none");
    details.push(t("state.queues", { queues }));
  }
  $("agent-details").textContent = details.join(" · ");
  const known = Boolean(agent);
  $("btn-ready").disabled = !known || state === "ready";
  $("btn-not-ready").disabled = !known;
  $("btn-sign-out").disabled = !known || state === "signed_out";
}

async function resync() {
  try {
    desk.agent = await desk.call("GET", "/agents/me");
    $("state-error").textContent = "";
  } catch (err) {
    if (err.status === 404) {
      desk.agent = null;
      $("state-error").textContent = t("desktop.notAgent");
    } else if (err.status !== 401) {
      $("state-error").textContent = t("action.failed", { message: err.message });
    }
  }
  renderState();
}

async function act(steps) {
  $("state-error").textContent = "";
  try {
    for (const [path, body] of steps) desk.agent = await desk.call("POST", path, body);
  } catch (err) {
    $("state-error").textContent = t("action.failed", { message: err.message });
  }
  renderState();
}

// A signed-out agent signs in first: the API allows ready/not ready only when signed in.
function signInFirst() {
  return desk.agent?.state === "signed_out" ? [["/agents/me/sign-in", undefined]] : [];
}

// --- screen pop ---------------------------------------------------------------------

function stars(importance) {
  const n = Math.max(0, Math.min(5, Math.round(Number(importance) || 0)));
  return "★".repeat(n) + "☆".repeat(5 - n);
}

function isVip(pop) {
  const tags = pop.customer?.tags ?? [];
  return Number(pop.importance) >= 4 || tags.some((tag) => String(tag).toLowerCase() === "vip");
}

function renderPop() {
  const pop = desk.pop;
  $("pop").dataset.empty = pop ? "false" : "true";
  $("pop-empty").hidden = Boolean(pop);
  $("pop-body").hidden = !pop;
  if (!pop) return;
  $("pop-caller").textContent = pop.caller ?? "";
  $("pop-customer").textContent = pop.customer?.name || t("pop.unknownCustomer");
  const importance = pop.importance ?? pop.customer?.importance ?? 0;
  const starsEl = $("pop-stars");
  starsEl.textContent = stars(importance);
  starsEl.title = t("pop.importanceValue", { value: importance });
  starsEl.setAttribute("aria-label", starsEl.title);
  $("pop-vip").hidden = !isVip({ ...pop, importance });
  $("pop-queue").textContent = pop.queue ?? "";
  $("pop-waited").textContent = t("pop.seconds", {
    seconds: Math.round(Number(pop.waited_seconds) || 0),
  });
  $("pop-ivr").textContent = pop.ivr_path?.length ? pop.ivr_path.join(" › ") : t("pop.noIvr");
  const recent = pop.recent_calls ?? [];
  const list = $("pop-recent");
  if (!recent.length) {
    list.replaceChildren(el("li", { class: "muted" }, t("pop.noRecent")));
  } else {
    list.replaceChildren(
      ...recent.slice(0, 5).map((c) => {
        const when = c.started_at ? new Date(c.started_at).toLocaleString(language()) : "";
        const parts = [c.queue, c.agent, c.outcome].filter(Boolean).join(" · ");
        return el("li", {}, el("span", { class: "when" }, when), " ", parts);
      }),
    );
  }
  if (!desk.subjectEdited) {
    $("case-subject").value = t("pop.caseSubject", { caller: pop.caller, queue: pop.queue });
  }
  renderCaseResult();
}

function renderCaseResult() {
  const result = $("case-result");
  const pop = desk.pop;
  const c = pop?.caseState;
  result.dataset.kind = c?.kind ?? "";
  if (!c) result.textContent = "";
  else if (c.kind === "created") result.textContent = t("pop.caseCreated", { number: c.number });
  else if (c.kind === "creating") result.textContent = t("pop.caseCreating");
  else result.textContent = t("pop.caseFailed", { message: c.message });
  $("btn-case").disabled = c?.kind === "created" || c?.kind === "creating";
}

function showPop(event) {
  desk.pop = { ...event, caseState: null };
  desk.subjectEdited = false;
  renderPop();
}

async function createCase() {
  const pop = desk.pop;
  if (!pop) return;
  const subject = $("case-subject").value.trim() || t("pop.caseSubject", pop);
  pop.caseState = { kind: "creating" };
  renderCaseResult();
  try {
    const created = await desk.call("POST", "/cases", { subject, call_id: pop.call_id });
    pop.caseState = { kind: "created", number: created.number, id: created.id };
  } catch (err) {
    pop.caseState = { kind: "failed", message: err.message };
  }
  if (desk.pop === pop) renderCaseResult();
}

// --- events -------------------------------------------------------------------------

function handleEvent(event) {
  switch (event.type) {
    case "hello":
    case "gap":
      // (re)connected, or events were dropped: what we show may be stale
      resync();
      break;
    case "agent":
      if (desk.agent && event.agent_id === desk.agent.agent_id) {
        desk.agent = { ...desk.agent, state: event.state, reason: event.reason ?? null };
        renderState();
      }
      break;
    case "screenpop":
      if (!desk.agent || !event.agent_id || event.agent_id === desk.agent.agent_id) showPop(event);
      break;
    default:
      break;
  }
}

// --- the page -----------------------------------------------------------------------

function showSignIn(message) {
  desk.socket?.stop();
  desk.socket = null;
  desk.session = null;
  desk.agent = null;
  desk.pop = null;
  $("desktop").hidden = true;
  $("conn").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  $("signin").hidden = false;
  $("signin-form").querySelector(".form-error").textContent = message ?? "";
}

function expired() {
  sessionStorage.clear();
  showSignIn(t("session.expired"));
}

async function enter(session) {
  desk.session = session;
  desk.call = api(session, expired);
  await setLanguage(preferredLanguage(session.username), session.username);
  $("signin").hidden = true;
  $("desktop").hidden = false;
  $("logout").hidden = false;
  $("conn").hidden = false;
  $("who").textContent = t("session.user", { user: session.username });
  renderState();
  renderPop();
  await resync();
  desk.socket = new EventSocket(session.token, {
    onEvent: handleEvent,
    onStatus: (state, seconds) => showConnection($("conn"), state, seconds),
    onUnauthorized: expired,
  });
  desk.socket.start();
}

async function main() {
  const session = loadSession();
  await setLanguage(preferredLanguage(session?.username));
  bindLanguageSelect($("lang"), () => desk.session?.username);
  bindSignInForm($("signin-form"), enter);
  $("btn-ready").addEventListener("click", () =>
    act([...signInFirst(), ["/agents/me/ready", undefined]]),
  );
  $("btn-not-ready").addEventListener("click", () =>
    act([...signInFirst(), ["/agents/me/not-ready", { reason: $("reason").value }]]),
  );
  $("btn-sign-out").addEventListener("click", () => act([["/agents/me/sign-out", undefined]]));
  $("btn-case").addEventListener("click", createCase);
  $("case-subject").addEventListener("input", () => {
    desk.subjectEdited = true;
  });
  $("logout").addEventListener("click", async () => {
    const s = desk.session;
    showSignIn();
    if (s) await signOutSession(s);
  });
  document.addEventListener("telportal:language", () => {
    renderState();
    renderPop();
    refreshConnection($("conn"));
    if (desk.session) $("who").textContent = t("session.user", { user: desk.session.username });
  });
  if (session) await enter(session);
  else showSignIn();
  document.body.dataset.ready = "true";
}

// For tests and for integrations embedding the desktop: feed an event as if it came
// from the socket, ask for a resync, read what is shown.
window.telportalDesktop = {
  handleEvent,
  resync,
  get agent() {
    return desk.agent;
  },
  get socket() {
    return desk.socket;
  },
};

main();
