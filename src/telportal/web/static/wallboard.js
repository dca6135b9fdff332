// The supervisors' wallboard: queues, services and agents live, alarms, the escalation
// inbox, and a supervisor's actions (force an agent's state; listen, whisper, barge).
//
// Rows are kept by key and updated in place, and clocks tick once a second by changing
// only their text: nothing is rebuilt when an event arrives, so nothing moves and a
// menu opened on a row stays open.
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

const STATES = ["ready", "ringing", "talking", "wrap_up", "not_ready"];
const REASONS = ["break", "lunch", "training", "meeting", "admin"];
const MODES = ["listen", "whisper", "barge"];
const THRESHOLD_KEY = "telportal.wallboard.waitThreshold";
const DEFAULT_THRESHOLD = 60;

const board = {
  session: null,
  call: null,
  queues: new Map(), // queue_id -> figures, with `seenAt` (performance.now())
  queueInfo: new Map(), // queue_id -> {service_id, service_level_seconds}
  services: new Map(), // service_id -> name
  agents: new Map(), // agent_id -> AgentOut, with `since` (performance.now())
  calls: new Map(), // call_id -> {call_id, caller, queue, agent_id, state, monitors}
  breaches: new Map(), // key -> case alert (breach), newest last
  escalations: [],
  socket: null,
  updatedAt: null,
  ticker: null,
  extension: null, // the signed-in supervisor's own phone, where a monitored call rings
};

function translated(prefix, value) {
  const key = `${prefix}.${value}`;
  const text = t(key);
  return text === key ? value : text;
}

// REST (`/queues-status`) and events (`queue`) name a few figures differently.
function queueFigures(q) {
  return {
    queue_id: q.queue_id,
    name: q.name ?? q.queue,
    waiting: q.waiting,
    ringing: q.ringing ?? 0,
    talking: q.talking ?? 0,
    longest_wait: q.longest_wait_seconds ?? q.longest_wait ?? 0,
    service_level: q.service_level,
    answered: q.answered,
    abandoned: q.abandoned,
    agents_free: q.agents_free,
    agents_staffed: q.agents_staffed,
    seenAt: performance.now(),
  };
}

// The longest wait now: the figure as received, plus the time since, while anyone waits.
function longestWait(q) {
  if (!q.waiting) return 0;
  return q.longest_wait + (performance.now() - q.seenAt) / 1000;
}

function inState(a) {
  return a.since === null ? null : (performance.now() - a.since) / 1000;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.max(0, Math.floor(Number(seconds) || 0));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

function percent(share) {
  return share === null || share === undefined ? "—" : `${Math.round(share * 100)}%`;
}

function threshold() {
  const value = Number($("wait-threshold").value);
  return Number.isFinite(value) && value > 0 ? value : DEFAULT_THRESHOLD;
}

// --- rows kept by key -------------------------------------------------------------------

// Make `tbody` show one row per item, in order, reusing the rows it already has.
function syncRows(tbody, items, keyOf, create, update, emptyText, columns) {
  const rows = tbody._rows ?? (tbody._rows = new Map());
  const wanted = new Set(items.map(keyOf));
  for (const [key, row] of rows) {
    if (!wanted.has(key)) {
      row.remove();
      rows.delete(key);
    }
  }
  const empty = tbody.querySelector("tr.empty");
  if (!items.length) {
    if (!empty) {
      tbody.append(el("tr", { class: "empty" }, el("td", { colspan: String(columns), class: "muted" })));
    }
    tbody.querySelector("tr.empty td").textContent = emptyText;
    return;
  }
  empty?.remove();
  let previous = null;
  for (const item of items) {
    const key = keyOf(item);
    let row = rows.get(key);
    if (!row) {
      row = create(item);
      rows.set(key, row);
    }
    update(row, item);
    const expected = previous ? previous.nextSibling : tbody.firstChild;
    if (expected !== row) tbody.insertBefore(row, expected);
    previous = row;
  }
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function cell(field, numeric = false) {
  return el("td", { class: numeric ? "num" : "", dataset: { field } });
}

function field(row, name) {
  return row.querySelector(`[data-field="${name}"]`);
}

// Agents of some queues, counted by state: chips in a fixed order.
function stateCounts(queueNames) {
  const counts = new Map(STATES.map((s) => [s, 0]));
  for (const a of board.agents.values()) {
    if (a.queues.some((q) => queueNames.has(q)) && counts.has(a.state)) {
      counts.set(a.state, counts.get(a.state) + 1);
    }
  }
  return counts;
}

function fillStates(td, counts) {
  if (!td.firstChild) {
    td.append(
      ...STATES.map((s) =>
        el("span", { class: "chip", dataset: { state: s, count: "0" } }, el("b"), el("span")),
      ),
    );
  }
  for (const chip of td.children) {
    const n = counts.get(chip.dataset.state) ?? 0;
    chip.dataset.count = String(n);
    chip.hidden = n === 0;
    setText(chip.firstChild, String(n));
    setText(chip.lastChild, ` ${translated("state", chip.dataset.state)}`);
  }
}

function figuresRow(keyName) {
  return (item) =>
    el(
      "tr",
      { dataset: { [keyName]: item.name } },
      cell("name"),
      cell("waiting", true),
      cell("longest_wait", true),
      cell("service_level", true),
      cell("answered", true),
      cell("abandoned", true),
      cell("agents", true),
      cell("states"),
    );
}

function fillFigures(row, f) {
  setText(field(row, "name"), f.name);
  setText(field(row, "waiting"), String(f.waiting));
  setText(field(row, "longest_wait"), duration(f.longestWait));
  setText(field(row, "service_level"), percent(f.service_level));
  setText(field(row, "answered"), String(f.answered));
  setText(field(row, "abandoned"), String(f.abandoned));
  setText(field(row, "agents"), `${f.agents_free} / ${f.agents_staffed}`);
  row.classList.toggle("busy", f.waiting > 0);
  row.dataset.alarm = String(f.waiting > 0 && f.longestWait > threshold());
  fillStates(field(row, "states"), f.counts);
}

// --- queues and services ------------------------------------------------------------------

function queueRows() {
  return [...board.queues.values()]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((q) => ({ ...q, longestWait: longestWait(q), counts: stateCounts(new Set([q.name])) }));
}

function serviceRows(queues) {
  const byService = new Map();
  for (const q of queues) {
    const serviceId = board.queueInfo.get(q.queue_id)?.service_id ?? "";
    const s = byService.get(serviceId) ?? {
      service_id: serviceId,
      name: board.services.get(serviceId) ?? t("wall.noService"),
      waiting: 0,
      longestWait: 0,
      answered: 0,
      abandoned: 0,
      inTime: 0,
      levelKnown: false,
      agents: new Set(),
      free: new Set(),
      queueNames: new Set(),
    };
    s.waiting += q.waiting;
    s.longestWait = Math.max(s.longestWait, q.longestWait);
    s.answered += q.answered;
    s.abandoned += q.abandoned;
    if (q.service_level !== null && q.service_level !== undefined) {
      // service level = answered in time / (answered + abandoned), per queue
      s.inTime += q.service_level * (q.answered + q.abandoned);
      s.levelKnown = true;
    }
    s.queueNames.add(q.name);
    byService.set(serviceId, s);
  }
  // An agent of several queues of one service counts once.
  for (const s of byService.values()) {
    for (const a of board.agents.values()) {
      if (!a.queues.some((name) => s.queueNames.has(name))) continue;
      if (a.state !== "signed_out") s.agents.add(a.agent_id);
      if (a.available) s.free.add(a.agent_id);
    }
  }
  return [...byService.values()]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((s) => ({
      ...s,
      service_level: s.levelKnown ? s.inTime / Math.max(1, s.answered + s.abandoned) : null,
      agents_free: s.free.size,
      agents_staffed: s.agents.size,
      counts: stateCounts(s.queueNames),
    }));
}

// --- agents -------------------------------------------------------------------------------

function callOf(agentId) {
  for (const c of board.calls.values()) if (!c.ended && c.agent_id === agentId) return c;
  return null;
}

function agentRow(a) {
  const force = el("select", { class: "force-state", dataset: { agent: a.username } });
  force.addEventListener("change", () => forceState(a.agent_id, force));
  const monitor = el(
    "div",
    { class: "monitor-buttons" },
    ...MODES.map((mode) => {
      const button = el("button", { type: "button", class: "mini", dataset: { mode } });
      button.addEventListener("click", () => monitorCall(a.agent_id, mode, button));
      return button;
    }),
  );
  return el(
    "tr",
    { dataset: { agent: a.username, agentId: a.agent_id } },
    cell("name"),
    cell("extension"),
    el("td", { dataset: { field: "state" } }, el("span", { class: "badge" })),
    cell("reason"),
    cell("in_state", true),
    cell("contact"),
    el("td", { dataset: { field: "force" } }, force),
    el("td", { dataset: { field: "monitor" } }, monitor),
  );
}

function fillForceMenu(select) {
  const options = [
    ["", t("wall.choose")],
    ["ready", t("wall.forceReady")],
    ...REASONS.map((r) => [`not_ready:${r}`, t("wall.forceNotReady", { reason: translated("reason", r) })]),
    ["sign_out", t("wall.forceSignOut")],
  ];
  const signature = `${language()}|${options.length}`;
  if (select.dataset.signature === signature) return;
  select.dataset.signature = signature;
  select.replaceChildren(...options.map(([value, text]) => el("option", { value }, text)));
}

function fillAgent(row, a) {
  setText(field(row, "name"), a.display_name || a.username);
  setText(field(row, "extension"), a.extension ?? "");
  const badge = row.querySelector(".badge");
  badge.dataset.state = a.state;
  setText(badge, translated("state", a.state));
  setText(field(row, "reason"), a.reason ? translated("reason", a.reason) : "");
  setText(field(row, "in_state"), duration(inState(a)));
  const call = callOf(a.agent_id);
  const contact = field(row, "contact");
  contact.dataset.call = call?.call_id ?? "";
  setText(contact, call ? [call.caller, call.queue].filter(Boolean).join(" · ") : "");
  fillForceMenu(row.querySelector(".force-state"));
  const mine = call ? myMonitorMode(call) : null;
  for (const button of row.querySelectorAll(".monitor-buttons button")) {
    setText(button, t(`wall.${button.dataset.mode}`));
    button.disabled = !call || button.dataset.busy === "true";
    button.setAttribute("aria-pressed", String(mine === button.dataset.mode));
  }
}

// The mode this supervisor monitors the call in (monitors are kept by extension).
function myMonitorMode(call) {
  return board.extension ? (call.monitors?.[board.extension] ?? null) : null;
}

function agentList() {
  return [...board.agents.values()].sort((a, b) =>
    (a.extension ?? a.username).localeCompare(b.extension ?? b.username),
  );
}

// --- alarms and the escalation inbox -----------------------------------------------------

function alarmItems() {
  const items = [];
  const limit = threshold();
  for (const q of [...board.queues.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    const wait = longestWait(q);
    if (q.waiting > 0 && wait > limit) {
      items.push({
        key: `wait:${q.queue_id}`,
        kind: "long_wait",
        text: t("wall.alarmLongWait", { queue: q.name, wait: duration(wait), count: q.waiting }),
        queue: q.name,
      });
    }
  }
  for (const [key, b] of [...board.breaches.entries()].reverse()) {
    items.push({
      key,
      kind: "breach",
      case: String(b.case_number),
      text: t("wall.alarmBreach", {
        number: b.case_number,
        target: translated("wall.target", b.target),
        assignee: b.assignee || "—",
        late: duration(b.late_seconds),
      }),
    });
  }
  return items;
}

function renderAlarms() {
  const list = $("alarms");
  const items = alarmItems();
  const rows = list._rows ?? (list._rows = new Map());
  const wanted = new Set(items.map((i) => i.key));
  for (const [key, li] of rows) {
    if (!wanted.has(key)) {
      li.remove();
      rows.delete(key);
    }
  }
  let previous = null;
  for (const item of items) {
    let li = rows.get(item.key);
    if (!li) {
      const dismiss = el("button", { type: "button", class: "mini dismiss" });
      dismiss.addEventListener("click", () => {
        board.breaches.delete(item.key);
        renderAlarms();
      });
      li = el(
        "li",
        { class: "alarm", dataset: { kind: item.kind, key: item.key } },
        el("span", { class: "alarm-text" }),
        item.kind === "breach" ? dismiss : null,
      );
      if (item.case) li.dataset.case = item.case;
      if (item.queue) li.dataset.queue = item.queue;
      rows.set(item.key, li);
    }
    setText(li.querySelector(".alarm-text"), item.text);
    const dismiss = li.querySelector(".dismiss");
    if (dismiss) {
      setText(dismiss, "×");
      dismiss.title = t("wall.dismiss");
      dismiss.setAttribute("aria-label", t("wall.dismiss"));
    }
    const expected = previous ? previous.nextSibling : list.firstChild;
    if (expected !== li) list.insertBefore(li, expected);
    previous = li;
  }
  $("alarms-empty").style.visibility = items.length ? "hidden" : "visible"; // keeps its line
  const count = $("alarm-count");
  count.dataset.count = String(items.length);
  setText(count, String(items.length));
  $("alarms-card").dataset.alarm = String(items.length > 0);
}

function renderEscalations() {
  const list = $("escalations");
  list.replaceChildren(
    ...board.escalations.map((e) =>
      el(
        "li",
        { class: "escalation", dataset: { case: String(e.case_number), level: String(e.level) } },
        el("div", { class: "esc-head" }, `#${e.case_number} ${e.subject ?? ""}`),
        el(
          "div",
          { class: "muted esc-detail" },
          t("wall.escalation", {
            level: e.level,
            notify: e.notify,
            trigger: translated("wall.trigger", e.trigger),
            time: new Date(e.at).toLocaleTimeString(language()),
          }),
        ),
      ),
    ),
  );
  $("escalations-empty").style.visibility = board.escalations.length ? "hidden" : "visible";
  const count = $("escalation-count");
  count.dataset.count = String(board.escalations.length);
  setText(count, String(board.escalations.length));
}

// --- rendering ----------------------------------------------------------------------------

function render() {
  const queues = queueRows();
  syncRows($("queues").tBodies[0], queues, (q) => q.queue_id, figuresRow("queue"), fillFigures,
    t("wall.noQueues"), 8); // prettier-ignore
  syncRows($("services").tBodies[0], serviceRows(queues), (s) => s.service_id,
    figuresRow("service"), fillFigures, t("wall.noQueues"), 8); // prettier-ignore
  syncRows($("agents").tBodies[0], agentList(), (a) => a.agent_id, agentRow, fillAgent,
    t("wall.noAgents"), 8); // prettier-ignore
  renderAlarms();
  renderEscalations();
  setText(
    $("updated"),
    board.updatedAt ? t("wall.updated", { time: board.updatedAt.toLocaleTimeString(language()) }) : "",
  );
}

// Once a second: only the clocks (and the alarms they raise) change.
function tick() {
  if ($("board").hidden) return;
  const queues = queueRows();
  for (const row of $("queues").tBodies[0].rows) {
    const q = queues.find((x) => x.name === row.dataset.queue);
    if (q) fillFigures(row, q);
  }
  const services = serviceRows(queues);
  for (const row of $("services").tBodies[0].rows) {
    const s = services.find((x) => x.name === row.dataset.service);
    if (s) fillFigures(row, s);
  }
  for (const row of $("agents").tBodies[0].rows) {
    const a = board.agents.get(row.dataset.agentId);
    if (a) setText(field(row, "in_state"), duration(inState(a)));
  }
  renderAlarms();
}

// --- reading and events -------------------------------------------------------------------

function agentEntry(a) {
  const seconds = a.in_state_seconds;
  return { ...a, since: seconds === null || seconds === undefined ? null : performance.now() - seconds * 1000 };
}

function callEntry(c, previous) {
  const monitors = { ...(previous?.monitors ?? {}) };
  for (const m of c.monitors ?? []) monitors[m.extension] = m.mode;
  return {
    call_id: c.call_id,
    caller: c.caller,
    queue: c.queue,
    agent_id: c.agent_id,
    state: c.state ?? "talking",
    monitors,
  };
}

async function loadEscalations() {
  try {
    board.escalations = await board.call("GET", "/case-escalations?limit=50");
    renderEscalations();
  } catch (err) {
    if (err.status !== 401) $("board-error").textContent = err.message;
  }
}

async function reload() {
  const started = performance.now();
  try {
    const [queues, agents, calls, meta, services] = await Promise.all([
      board.call("GET", "/queues-status"),
      board.call("GET", "/agents"),
      board.call("GET", "/live-calls"),
      board.call("GET", "/queues?limit=500"),
      board.call("GET", "/services?limit=500"),
    ]);
    // What an event or an action changed while the answers were on their way is newer
    // than the answers: keep it.
    const fresher = (map, key) => (map.get(key)?.touched ?? -1) > started;
    board.queues = new Map(
      queues.map((q) => [q.queue_id, fresher(board.queues, q.queue_id) ? board.queues.get(q.queue_id) : queueFigures(q)]),
    );
    board.agents = new Map(
      agents.map((a) => [a.agent_id, fresher(board.agents, a.agent_id) ? board.agents.get(a.agent_id) : agentEntry(a)]),
    );
    const current = new Map(calls.map((c) => [c.call_id, callEntry(c)]));
    for (const [id, c] of board.calls) if (c.touched > started) current.set(id, c);
    for (const [id, c] of current) if (c.ended) current.delete(id);
    board.calls = current;
    board.queueInfo = new Map(meta.items.map((q) => [q.id, q]));
    board.services = new Map(services.items.map((s) => [s.id, s.name]));
    board.updatedAt = new Date();
    $("board-error").textContent = "";
    render();
    await loadEscalations();
    return agents;
  } catch (err) {
    if (err.status !== 401) $("board-error").textContent = err.message;
    return null;
  }
}

function onCallState(event) {
  if (event.state === "ended") {
    // Kept a moment as ended, so a reload already on its way does not bring it back.
    board.calls.set(event.call_id, { call_id: event.call_id, ended: true, touched: performance.now() });
    return;
  }
  const previous = board.calls.get(event.call_id);
  if (previous?.ended) return; // e.g. a monitor leaving after the call ended
  const call = { ...callEntry(event, previous), touched: performance.now() };
  if (event.state.startsWith("monitor_") && event.detail) {
    if (event.state === "monitor_left") delete call.monitors[event.detail];
    else call.monitors[event.detail] = event.state.slice("monitor_".length);
  }
  board.calls.set(event.call_id, call);
}

function handleEvent(event) {
  switch (event.type) {
    case "hello":
    case "gap":
      reload();
      return;
    case "queue":
      board.queues.set(event.queue_id, { ...queueFigures(event), touched: performance.now() });
      if (!board.queueInfo.has(event.queue_id)) reload(); // a queue added meanwhile
      break;
    case "agent": {
      const known = board.agents.get(event.agent_id);
      if (!known) {
        reload(); // an agent we have not seen yet: read them all again
        return;
      }
      const changed = known.state !== event.state || known.reason !== event.reason;
      board.agents.set(event.agent_id, {
        ...known,
        state: event.state,
        reason: event.reason,
        available: event.state === "ready" && known.reachable,
        since: changed ? performance.now() : known.since,
        touched: performance.now(),
      });
      break;
    }
    case "callstate":
      onCallState(event);
      break;
    case "case":
      if (event.chain_id !== undefined) {
        loadEscalations(); // CaseEscalated: the inbox, as the server keeps it
        return;
      }
      if (event.level !== "breach") return;
      board.breaches.delete(`breach:${event.case_id}:${event.target}`);
      board.breaches.set(`breach:${event.case_id}:${event.target}`, event);
      break;
    default:
      return;
  }
  board.updatedAt = new Date();
  render();
}

// --- a supervisor's actions -------------------------------------------------------------

async function forceState(agentId, select) {
  const choice = select.value;
  if (!choice) return;
  select.disabled = true;
  const error = $("board-error");
  const asked = performance.now();
  try {
    let answer;
    // The API allows ready and not ready only when signed in: a signed-out agent is
    // signed in first, as the desktop does.
    if (choice !== "sign_out" && board.agents.get(agentId)?.state === "signed_out") {
      await board.call("POST", `/agents/${agentId}/sign-in`);
    }
    if (choice === "ready") answer = await board.call("POST", `/agents/${agentId}/ready`);
    else if (choice === "sign_out") answer = await board.call("POST", `/agents/${agentId}/sign-out`);
    else {
      const reason = choice.split(":")[1];
      answer = await board.call("POST", `/agents/${agentId}/not-ready`, { reason });
    }
    const known = board.agents.get(agentId);
    const changed = !known || known.state !== answer.state || known.reason !== answer.reason;
    // An `agent` event that came while the answer was on its way is newer than it.
    if ((known?.touched ?? -1) > asked) return;
    board.agents.set(agentId, {
      ...agentEntry(answer),
      since: changed ? performance.now() - (answer.in_state_seconds ?? 0) * 1000 : known.since,
      touched: performance.now(),
    });
    error.textContent = "";
    render();
  } catch (err) {
    const agent = board.agents.get(agentId);
    if (err.status !== 401) {
      error.textContent = t("wall.forceFailed", { agent: agent?.username ?? "", message: err.message });
    }
  } finally {
    select.value = "";
    select.disabled = false;
  }
}

async function monitorCall(agentId, mode, button) {
  const call = callOf(agentId);
  if (!call) return;
  button.dataset.busy = "true";
  button.disabled = true;
  const error = $("board-error");
  try {
    const answer = await board.call(
      "POST",
      `/live-calls/${encodeURIComponent(call.call_id)}/monitor`,
      { mode },
    );
    board.calls.set(call.call_id, {
      ...callEntry(answer, board.calls.get(call.call_id)),
      touched: performance.now(),
    });
    error.textContent = "";
  } catch (err) {
    if (err.status !== 401) error.textContent = t("wall.monitorFailed", { message: err.message });
  } finally {
    delete button.dataset.busy;
    render();
  }
}

// --- the page -----------------------------------------------------------------------------

function showOnly(id) {
  for (const section of ["signin", "denied", "board"]) $(section).hidden = section !== id;
}

function showSignIn(message) {
  board.socket?.stop();
  board.socket = null;
  board.session = null;
  $("conn").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  showOnly("signin");
  $("signin-form").querySelector(".form-error").textContent = message ?? "";
}

function expired() {
  sessionStorage.clear();
  showSignIn(t("session.expired"));
}

async function enter(session) {
  board.session = session;
  board.call = api(session, expired);
  await setLanguage(preferredLanguage(session.username), session.username);
  $("logout").hidden = false;
  $("who").textContent = t("session.user", { user: session.username });
  if (session.role === "agent") {
    showOnly("denied");
    return;
  }
  let agents;
  try {
    agents = await board.call("GET", "/agents");
  } catch (err) {
    if (err.status === 401) return;
    showOnly("denied");
    return;
  }
  // An agent sees only themself: the wallboard is not for them.
  const me = session.username.split("@")[0];
  if (agents.length === 1 && agents[0].username === me) {
    showOnly("denied");
    return;
  }
  showOnly("board");
  $("conn").hidden = false;
  try {
    const me = await board.call("GET", "/me");
    board.extension = (await board.call("GET", `/users/${me.actor_id}`)).extension ?? null;
  } catch {
    board.extension = null; // without it the monitor buttons cannot show which mode is on
  }
  await reload();
  board.socket = new EventSocket(session.token, {
    onEvent: handleEvent,
    onStatus: (state, seconds) => showConnection($("conn"), state, seconds),
    onUnauthorized: expired,
  });
  board.socket.start();
}

function bindThreshold() {
  const input = $("wait-threshold");
  const stored = Number(localStorage.getItem(THRESHOLD_KEY));
  input.value = String(Number.isFinite(stored) && stored > 0 ? stored : DEFAULT_THRESHOLD);
  input.addEventListener("change", () => {
    if (Number(input.value) > 0) localStorage.setItem(THRESHOLD_KEY, String(Number(input.value)));
    tick();
  });
}

async function main() {
  const session = loadSession();
  await setLanguage(preferredLanguage(session?.username));
  bindLanguageSelect($("lang"), () => board.session?.username);
  bindSignInForm($("signin-form"), enter);
  bindThreshold();
  $("logout").addEventListener("click", async () => {
    const s = board.session;
    showSignIn();
    if (s) await signOutSession(s);
  });
  document.addEventListener("telportal:language", () => {
    render();
    refreshConnection($("conn"));
    if (board.session) $("who").textContent = t("session.user", { user: board.session.username });
  });
  board.ticker = setInterval(tick, 1000);
  if (session) await enter(session);
  else showSignIn();
  document.body.dataset.ready = "true";
}

window.telportalWallboard = {
  handleEvent,
  reload,
  get socket() {
    return board.socket;
  },
};

main();
