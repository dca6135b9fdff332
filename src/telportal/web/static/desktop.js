// The agent desktop: own ACD state, live events, the screen pop, and (in the
// desktop-*.js modules) the call card, cases and the customer timeline.
import {
  EventSocket,
  api,
  bindLanguageSelect,
  bindSignInForm,
  el,
  formatDateTime,
  loadSession,
  preferredLanguage,
  refreshConnection,
  setLanguage,
  showConnection,
  signOutSession,
  t,
} from "./common.js";
import {
  agentStateChanged,
  callOffered,
  callStateEvent,
  initCall,
  loadLiveCalls,
  loadQueues,
  renderCall,
  tickCall,
} from "./desktop-call.js";
import {
  addNote,
  caseEvent,
  loadMyCases,
  loadPopCases,
  reloadCasesSoon,
  renderCases,
  renderPopCases,
  tickCases,
} from "./desktop-cases.js";
import {
  initCustomers,
  openCustomer,
  reloadTimelineSoon,
  renderCustomer,
} from "./desktop-customers.js";

const $ = (id) => document.getElementById(id);

const desk = {
  session: null,
  call: null, // the REST helper of the session
  agent: null, // the last AgentOut (GET /agents/me), kept current by `agent` events
  pop: null, // the last screen pop
  subjectEdited: false,
  noteEdited: false,
  socket: null,
  live: null, // the agent's current call (desktop-call.js)
  lastCall: null, // the call being wrapped up
  wrap: null, // the wrap-up in progress: its end and the save's result
  busy: null, // a call control waiting for the server's answer
  callError: "",
  queues: [], // GET /queues: transfer targets and wrap-up times
  cases: null, // "My cases"
  caseAlerts: new Map(), // case id -> warning | breach | escalated, until looked at
  customer: null, // the customer whose timeline is shown
  timeline: null,
};

// Keeps the agent and everything that follows from their state in step.
desk.setAgent = (agent) => {
  const before = desk.agent?.state;
  desk.agent = agent;
  renderState();
  agentStateChanged(desk, before);
};
desk.openCustomer = (id) => openCustomer(desk, id);
desk.showTab = showTab;

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
    desk.setAgent(await desk.call("GET", "/agents/me"));
    $("state-error").textContent = "";
  } catch (err) {
    if (err.status === 404) {
      desk.agent = null;
      $("state-error").textContent = t("desktop.notAgent");
    } else if (err.status !== 401) {
      $("state-error").textContent = t("action.failed", { message: err.message });
    }
    renderState();
  }
  await Promise.all([loadLiveCalls(desk), loadMyCases(desk)]);
}

async function act(steps) {
  $("state-error").textContent = "";
  try {
    for (const [path, body] of steps) desk.setAgent(await desk.call("POST", path, body));
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
  $("btn-pop-timeline").hidden = !pop.customer?.id;
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
        const when = c.started_at ? formatDateTime(c.started_at) : "";
        const parts = [c.queue, c.agent, c.outcome].filter(Boolean).join(" · ");
        return el("li", {}, el("span", { class: "when" }, when), " ", parts);
      }),
    );
  }
  if (!desk.subjectEdited) {
    $("case-subject").value = t("pop.caseSubject", { caller: pop.caller, queue: pop.queue });
  }
  if (!desk.noteEdited) $("case-note").value = t("pop.noteText", pop);
  renderCaseResult();
  renderPopCases(desk);
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
  desk.pop = { ...event, caseState: null, openCases: [], noteState: null };
  desk.subjectEdited = false;
  desk.noteEdited = false;
  renderPop();
  // The pop must be on the page before the phone rings: the rest comes right after.
  setTimeout(() => {
    callOffered(desk, event);
    loadPopCases(desk);
  }, 0);
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
  if (pop.caseState.kind === "created") loadPopCases(desk);
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
        const changed = event.state !== desk.agent.state;
        desk.setAgent({
          ...desk.agent,
          state: event.state,
          reason: event.reason ?? null,
          // the state just began: its time counts from now (talk timer, wrap-up)
          in_state_seconds: changed ? 0 : desk.agent.in_state_seconds,
          wrap_up_until: event.wrap_up_until ?? (changed ? null : desk.agent.wrap_up_until),
        });
      }
      break;
    case "screenpop":
      if (!desk.agent || !event.agent_id || event.agent_id === desk.agent.agent_id) showPop(event);
      break;
    case "callstate":
      callStateEvent(desk, event);
      break;
    case "case":
      caseEvent(desk, event);
      break;
    case "data":
      if (event.entity === "case") reloadCasesSoon(desk);
      if (["case", "customer", "customer_interaction"].includes(event.entity)) {
        reloadTimelineSoon(desk);
      }
      break;
    default:
      break;
  }
}

// --- shortcuts, help, tabs -----------------------------------------------------------

// Alt + a letter (by key position, so it works whatever the keyboard layout types).
// They never fire while the agent types in a field; a disabled button ignores them.
const SHORTCUTS = [
  { code: "KeyA", keys: "Alt+A", label: "call.answer", target: "btn-answer" },
  { code: "KeyH", keys: "Alt+H", label: "call.hangup", target: "btn-hangup" },
  { code: "KeyO", keys: "Alt+O", label: "help.hold", target: "btn-hold" },
  { code: "KeyR", keys: "Alt+R", label: "action.ready", target: "btn-ready" },
  { code: "KeyN", keys: "Alt+N", label: "action.notReady", target: "btn-not-ready" },
  { code: "KeyT", keys: "Alt+T", label: "help.transfer", target: "xfer-target", focus: true },
  { code: "KeyE", keys: "Alt+E", label: "wrap.end", target: "btn-wrap-end" },
  { code: "KeyC", keys: "Alt+C", label: "cases.heading", tab: "cases" },
  { code: "KeyF", keys: "Alt+F", label: "help.search", tab: "customers", target: "cust-query", focus: true },
  { code: "Slash", keys: "Alt+/", label: "help.heading", help: true },
];

function typing(target) {
  return (
    target instanceof HTMLElement &&
    (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))
  );
}

function onKey(ev) {
  if (ev.key === "Escape" && !$("help").hidden) {
    $("help").hidden = true;
    return;
  }
  if (!ev.altKey || ev.ctrlKey || ev.metaKey || typing(ev.target)) return;
  if ($("desktop").hidden) return;
  const shortcut = SHORTCUTS.find((s) => s.code === ev.code);
  if (!shortcut) return;
  ev.preventDefault();
  if (shortcut.help) {
    toggleHelp();
    return;
  }
  if (shortcut.tab) showTab(shortcut.tab);
  const target = shortcut.target ? $(shortcut.target) : null;
  if (!target || target.disabled || target.closest("[hidden]")) return;
  if (shortcut.focus) target.focus();
  else target.click();
}

// Tooltips name each control's shortcut; the help panel lists them all.
function updateTitles() {
  for (const s of SHORTCUTS) {
    if (!s.target || s.focus) continue;
    const button = $(s.target);
    button.title = t("help.tip", { label: button.textContent, keys: s.keys });
  }
  $("xfer-target").title = t("help.tip", { label: t("help.transfer"), keys: "Alt+T" });
  $("tab-cases").title = t("help.tip", { label: t("cases.heading"), keys: "Alt+C" });
  $("tab-customers").title = t("help.tip", { label: t("help.search"), keys: "Alt+F" });
}
desk.updateTitles = updateTitles;

function renderHelp() {
  $("help-list").replaceChildren(
    ...SHORTCUTS.flatMap((s) => [el("dt", {}, s.keys), el("dd", {}, t(s.label))]),
  );
}

function toggleHelp() {
  renderHelp();
  $("help").hidden = !$("help").hidden;
}

function showTab(name) {
  for (const [tab, panel] of [
    ["tab-cases", "panel-cases"],
    ["tab-customers", "panel-customers"],
  ]) {
    const on = tab === `tab-${name}`;
    $(tab).setAttribute("aria-selected", String(on));
    $(panel).hidden = !on;
  }
}

// One clock for everything that counts: the talk timer, the wrap-up countdown, the
// cases' "due in". Only texts in fixed-size places change.
function tick() {
  if (!desk.session) return;
  tickCall(desk);
  tickCases(desk);
}

function renderAll() {
  renderState();
  renderPop();
  renderCall(desk);
  renderCases(desk);
  renderCustomer(desk);
  if (!$("help").hidden) renderHelp();
  updateTitles();
}

// --- the page -----------------------------------------------------------------------

function showSignIn(message) {
  desk.socket?.stop();
  desk.socket = null;
  desk.session = null;
  desk.agent = null;
  desk.pop = null;
  desk.live = null;
  desk.lastCall = null;
  desk.wrap = null;
  desk.cases = null;
  desk.caseAlerts.clear();
  desk.customer = null;
  desk.timeline = null;
  $("desktop").hidden = true;
  $("conn").hidden = true;
  $("logout").hidden = true;
  $("btn-help").hidden = true;
  $("help").hidden = true;
  $("notices").replaceChildren();
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
  $("btn-help").hidden = false;
  $("conn").hidden = false;
  $("who").textContent = t("session.user", { user: session.username });
  renderAll();
  await Promise.all([resync(), loadQueues(desk)]);
  desk.socket = new EventSocket(session.token, {
    acks: true, // the server waits for the pop to be shown before ringing the phone
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
  $("case-note").addEventListener("input", () => {
    desk.noteEdited = true;
  });
  $("btn-case-note").addEventListener("click", () => addNote(desk));
  $("btn-pop-timeline").addEventListener("click", () => {
    if (desk.pop?.customer?.id) openCustomer(desk, desk.pop.customer.id);
  });
  $("btn-cases-refresh").addEventListener("click", () => loadMyCases(desk));
  $("tab-cases").addEventListener("click", () => showTab("cases"));
  $("tab-customers").addEventListener("click", () => showTab("customers"));
  $("btn-help").addEventListener("click", toggleHelp);
  $("btn-help-close").addEventListener("click", () => {
    $("help").hidden = true;
  });
  initCall(desk);
  initCustomers(desk);
  document.addEventListener("keydown", onKey);
  $("logout").addEventListener("click", async () => {
    const s = desk.session;
    showSignIn();
    if (s) await signOutSession(s);
  });
  document.addEventListener("telportal:language", () => {
    renderAll();
    refreshConnection($("conn"));
    if (desk.session) $("who").textContent = t("session.user", { user: desk.session.username });
  });
  setInterval(tick, 1000);
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
  get call() {
    return desk.live;
  },
  get cases() {
    return desk.cases;
  },
};

main();
