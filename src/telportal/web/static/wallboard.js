// The supervisors' wallboard: queues' and agents' live figures, updated by events.
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

const board = {
  session: null,
  call: null,
  queues: new Map(), // queue_id -> figures
  agents: new Map(), // agent_id -> AgentOut
  socket: null,
  updatedAt: null,
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
    longest_wait: q.longest_wait_seconds ?? q.longest_wait ?? 0,
    service_level: q.service_level,
    answered: q.answered,
    abandoned: q.abandoned,
    agents_free: q.agents_free,
    agents_staffed: q.agents_staffed,
  };
}

function duration(seconds) {
  const s = Math.max(0, Math.round(Number(seconds) || 0));
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, "0")}`;
}

function percent(share) {
  return share === null || share === undefined ? "—" : `${Math.round(share * 100)}%`;
}

function render() {
  const queues = [...board.queues.values()].sort((a, b) => a.name.localeCompare(b.name));
  const qbody = $("queues").tBodies[0];
  qbody.replaceChildren(
    ...(queues.length
      ? queues.map((q) =>
          el(
            "tr",
            { dataset: { queue: q.name }, class: q.waiting > 0 ? "busy" : "" },
            el("td", {}, q.name),
            el("td", { class: "num", dataset: { field: "waiting" } }, String(q.waiting)),
            el("td", { class: "num", dataset: { field: "longest_wait" } }, duration(q.longest_wait)),
            el("td", { class: "num", dataset: { field: "service_level" } }, percent(q.service_level)),
            el("td", { class: "num", dataset: { field: "answered" } }, String(q.answered)),
            el("td", { class: "num", dataset: { field: "abandoned" } }, String(q.abandoned)),
            el(
              "td",
              { class: "num", dataset: { field: "agents" } },
              `${q.agents_free} / ${q.agents_staffed}`,
            ),
          ),
        )
      : [el("tr", {}, el("td", { colspan: "7", class: "muted" }, t("wall.noQueues")))]),
  );
  const agents = [...board.agents.values()].sort((a, b) =>
    (a.extension ?? a.username).localeCompare(b.extension ?? b.username),
  );
  const abody = $("agents").tBodies[0];
  abody.replaceChildren(
    ...(agents.length
      ? agents.map((a) =>
          el(
            "tr",
            { dataset: { agent: a.username } },
            el("td", {}, a.display_name || a.username),
            el("td", {}, a.extension ?? ""),
            el(
              "td",
              {},
              el("span", { class: "badge", dataset: { state: a.state } }, translated("state", a.state)),
            ),
            el("td", {}, a.reason ? translated("reason", a.reason) : ""),
          ),
        )
      : [el("tr", {}, el("td", { colspan: "4", class: "muted" }, t("wall.noAgents")))]),
  );
  $("updated").textContent = board.updatedAt
    ? t("wall.updated", { time: board.updatedAt.toLocaleTimeString(language()) })
    : "";
}

async function reload() {
  try {
    const [queues, agents] = await Promise.all([
      board.call("GET", "/queues-status"),
      board.call("GET", "/agents"),
    ]);
    board.queues = new Map(queues.map((q) => [q.queue_id, queueFigures(q)]));
    board.agents = new Map(agents.map((a) => [a.agent_id, a]));
    board.updatedAt = new Date();
    $("board-error").textContent = "";
    render();
    return agents;
  } catch (err) {
    if (err.status !== 401) $("board-error").textContent = err.message;
    return null;
  }
}

function handleEvent(event) {
  switch (event.type) {
    case "hello":
    case "gap":
      reload();
      break;
    case "queue":
      board.queues.set(event.queue_id, queueFigures(event));
      board.updatedAt = new Date();
      render();
      break;
    case "agent": {
      const known = board.agents.get(event.agent_id);
      if (!known) {
        reload(); // an agent we have not seen yet: read them all again
        break;
      }
      board.agents.set(event.agent_id, { ...known, state: event.state, reason: event.reason });
      board.updatedAt = new Date();
      render();
      break;
    }
    default:
      break;
  }
}

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
  await reload();
  board.socket = new EventSocket(session.token, {
    onEvent: handleEvent,
    onStatus: (state, seconds) => showConnection($("conn"), state, seconds),
    onUnauthorized: expired,
  });
  board.socket.start();
}

async function main() {
  const session = loadSession();
  await setLanguage(preferredLanguage(session?.username));
  bindLanguageSelect($("lang"), () => board.session?.username);
  bindSignInForm($("signin-form"), enter);
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
