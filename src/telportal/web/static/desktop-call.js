// The agent desktop's call card: the current call's state, a talk timer and the
// call controls (answer, hold, hang up, transfer, consult, conference, DTMF,
// recording), and the wrap-up after the call (countdown, code, notes, end).
//
// The call is followed from `screenpop`, `agent` and `callstate` events, and read
// again from `GET /live-calls` after every (re)connection. Controls post to
// `/live-calls/{call_id}/...`; a refusal shows the server's message under them.
import { formatClock, t } from "./common.js";

const $ = (id) => document.getElementById(id);

const CONNECTED = new Set(["talking", "held", "consulting", "transferring"]);
export const WRAP_CODES = [
  "resolved",
  "information_given",
  "callback_needed",
  "complaint",
  "wrong_number",
  "other",
];

function path(callId, action) {
  return `/live-calls/${encodeURIComponent(callId)}/${action}`;
}

// What the card shows: the call's own state if connected, else the agent's.
export function callState(desk) {
  const live = desk.live;
  if (live?.transferTo) return "transferring";
  if (live && CONNECTED.has(live.state)) return live.state;
  const agentState = desk.agent?.state;
  if (agentState === "ringing") return "ringing";
  if (agentState === "talking") return "talking";
  return "idle";
}

function connected(desk) {
  return Boolean(desk.live?.call_id) && CONNECTED.has(callState(desk));
}

function newCall(fields) {
  return {
    call_id: null,
    caller: "",
    queue: null,
    state: "offered",
    talkSince: null,
    held: false,
    callerHeld: false,
    recording: null,
    recordingPaused: false,
    consulting: null,
    transferTo: null,
    conference: [],
    dtmf: "",
    note: "",
    ...fields,
  };
}

function endCall(desk) {
  if (desk.live?.call_id) {
    const live = desk.live;
    desk.lastCall = {
      call_id: live.call_id,
      caller: live.caller,
      queue: live.queue,
      talkSeconds: live.talkSince ? (Date.now() - live.talkSince) / 1000 : null,
    };
  }
  desk.live = null;
}

function startTalking(live, at = Date.now()) {
  live.state = "talking";
  if (live.talkSince === null) live.talkSince = at;
}

// --- events -------------------------------------------------------------------------

// A screen pop: the call being offered to this agent.
export function callOffered(desk, pop) {
  if (desk.live && desk.live.call_id !== pop.call_id && connected(desk)) return; // on a call
  if (desk.live?.call_id === pop.call_id) return;
  desk.live = newCall({ call_id: pop.call_id, caller: pop.caller ?? "", queue: pop.queue ?? null });
  desk.callError = "";
  renderCall(desk);
}

// The agent's ACD state changed (event or REST); `before` is the previous state.
export function agentStateChanged(desk, before) {
  const state = desk.agent?.state;
  const live = desk.live;
  if (state === "talking") {
    // since when: 0 s for an event (the state just began), the server's count after a read
    const since = Date.now() - (desk.agent.in_state_seconds ?? 0) * 1000;
    if (!live) {
      // talking, but which call? The server's list says (the events will too).
      desk.live = newCall({ state: "talking", talkSince: since });
      loadLiveCalls(desk, { authoritative: false });
    } else if (!CONNECTED.has(live.state)) {
      startTalking(live, since);
    }
  } else if (before === "ringing" && state !== "ringing" && live?.state === "offered") {
    desk.live = null; // the offer went elsewhere (withdrawn, not answered)
  }
  if (state === "wrap_up") {
    if (before !== "wrap_up" || !desk.wrap) {
      if (desk.live) endCall(desk);
      startWrapUp(desk);
    } else {
      desk.wrap.end = wrapEnd(desk) ?? desk.wrap.end;
    }
  } else {
    desk.wrap = null;
  }
  renderCall(desk);
}

function mine(desk, event) {
  const me = desk.agent?.agent_id;
  return (me && event.agent_id === me) || (desk.live?.call_id && event.call_id === desk.live.call_id);
}

export function callStateEvent(desk, event) {
  if (!mine(desk, event)) return;
  const me = desk.agent?.agent_id;
  let live = desk.live;
  if (!live || (live.call_id && live.call_id !== event.call_id)) {
    if (event.state === "ended" || (event.agent_id && event.agent_id !== me)) return;
    live = desk.live = newCall({ call_id: event.call_id });
  }
  live.call_id = event.call_id;
  live.caller = event.caller ?? live.caller;
  live.queue = event.queue ?? live.queue;
  live.note = "";
  switch (event.state) {
    case "talking":
      live.held = false;
      live.consulting = null;
      live.transferTo = null;
      startTalking(live);
      if (event.detail) live.note = event.detail;
      break;
    case "held":
      live.held = true;
      live.state = live.consulting ? "consulting" : "held";
      break;
    case "consulting":
      live.consulting = event.detail ?? "";
      live.held = true;
      live.state = "consulting";
      break;
    case "consult_cancelled":
      live.consulting = null;
      live.state = live.held ? "held" : "talking";
      break;
    case "transferring":
      live.transferTo = event.detail ?? "";
      break;
    case "transferred":
      if (event.agent_id && event.agent_id !== me) endCall(desk);
      else {
        live.transferTo = null;
        live.consulting = null;
        startTalking(live);
      }
      break;
    case "conference":
      if (event.detail && !live.conference.includes(event.detail)) live.conference.push(event.detail);
      break;
    case "caller_held":
      live.callerHeld = true;
      break;
    case "caller_resumed":
      live.callerHeld = false;
      break;
    case "recording_paused":
      live.recordingPaused = true;
      live.recording = true;
      break;
    case "recording_resumed":
      live.recordingPaused = false;
      live.recording = true;
      break;
    case "dtmf":
      live.dtmf = (live.dtmf + (event.detail ?? "")).slice(-16);
      break;
    case "ended":
      endCall(desk);
      break;
    default:
      break; // monitor_* and others: nothing the agent's card shows
  }
  renderCall(desk);
}

// The connected call, if any, as the server has it now. After a (re)connection the
// answer is `authoritative`: a call it does not list is over.
export async function loadLiveCalls(desk, { authoritative = true } = {}) {
  if (!desk.agent) return;
  let calls;
  try {
    calls = await desk.call("GET", "/live-calls");
  } catch {
    return; // no SIP on this site, or offline: the events will tell
  }
  const me = desk.agent?.agent_id;
  const call = (calls ?? []).find((c) => c.agent_id === me);
  if (!call) {
    if (authoritative && desk.live && CONNECTED.has(desk.live.state)) endCall(desk);
  } else {
    const talkSince =
      desk.agent?.state === "talking" && desk.agent.in_state_seconds != null
        ? Date.now() - desk.agent.in_state_seconds * 1000
        : Date.now();
    const live =
      desk.live?.call_id === call.call_id
        ? desk.live
        : newCall({ call_id: call.call_id, talkSince: desk.live?.talkSince ?? talkSince });
    applyLiveCall(live, call);
    desk.live = live;
  }
  renderCall(desk);
}

function applyLiveCall(live, call) {
  live.call_id = call.call_id;
  live.caller = call.caller ?? live.caller;
  live.queue = call.queue ?? live.queue;
  live.held = Boolean(call.held);
  live.callerHeld = Boolean(call.caller_held);
  live.recording = Boolean(call.recording);
  live.recordingPaused = Boolean(call.recording_paused);
  live.consulting = call.consulting ?? null;
  live.state = live.consulting ? "consulting" : live.held ? "held" : "talking";
  if (live.talkSince === null) live.talkSince = Date.now();
  const parties = (call.monitors ?? [])
    .filter((m) => m.mode === "participant")
    .map((m) => m.extension);
  if (parties.length) live.conference = parties;
}

// --- actions ------------------------------------------------------------------------

async function control(desk, action, body, label) {
  const live = desk.live;
  if (!live?.call_id) return;
  desk.busy = action;
  desk.busyLabel = label ?? "";
  desk.callError = "";
  renderCall(desk);
  try {
    const answer = await desk.call("POST", path(live.call_id, action), body);
    if (answer && desk.live === live) {
      if (answer.agent_id && answer.agent_id !== desk.agent?.agent_id) endCall(desk);
      else applyLiveCall(live, answer);
    }
    if (action === "dtmf" && desk.live === live) live.dtmf = (live.dtmf + body.digits).slice(-16);
  } catch (err) {
    desk.callError = t("call.failed", { message: err.message });
  } finally {
    desk.busy = null;
    desk.busyLabel = "";
    renderCall(desk);
  }
}

async function answer(desk) {
  desk.busy = "answer";
  desk.callError = "";
  renderCall(desk);
  try {
    const agent = await desk.call("POST", "/agents/me/answer");
    if (agent) desk.setAgent(agent);
  } catch (err) {
    desk.callError = t("call.failed", { message: err.message });
  } finally {
    desk.busy = null;
    renderCall(desk);
  }
}

function target(desk) {
  const kind = $("xfer-kind").value;
  const value = $("xfer-target").value.trim();
  if (!value) {
    desk.callError = t("call.targetMissing");
    renderCall(desk);
    $("xfer-target").focus();
    return null;
  }
  return { kind, value };
}

// Blind transfer: an agent by extension (`to`); a queue or an outside number with
// `queue` / `number`, which the server does not accept yet: its refusal is shown.
function transferBody({ kind, value }) {
  if (kind === "queue") return { queue: value };
  if (kind === "number") return { number: value };
  return { to: value };
}

export function initCall(desk) {
  $("btn-answer").addEventListener("click", () => answer(desk));
  $("btn-hangup").addEventListener("click", () => control(desk, "hangup"));
  $("btn-hold").addEventListener("click", () =>
    control(desk, desk.live?.held ? "unhold" : "hold"),
  );
  $("btn-transfer").addEventListener("click", () => {
    const to = target(desk);
    if (to) control(desk, "transfer", transferBody(to), t("call.transferringTo", { target: to.value }));
  });
  $("btn-consult").addEventListener("click", () => {
    const to = target(desk);
    if (to) control(desk, "consult", { to: to.value }, t("call.consultRinging", { target: to.value }));
  });
  $("btn-conference").addEventListener("click", () => {
    const to = target(desk);
    if (to) control(desk, "conference", { to: to.value }, t("call.conferenceRinging", { target: to.value }));
  });
  $("btn-complete").addEventListener("click", () => control(desk, "complete-transfer"));
  $("btn-cancel-consult").addEventListener("click", () => control(desk, "cancel-consult"));
  $("btn-recording").addEventListener("click", () =>
    control(desk, desk.live?.recordingPaused ? "recording/resume" : "recording/pause"),
  );
  for (const key of document.querySelectorAll("#dtmf [data-digit]")) {
    key.addEventListener("click", () => control(desk, "dtmf", { digits: key.dataset.digit }));
  }
  $("xfer-kind").addEventListener("change", () => renderCall(desk));
  $("btn-wrap-save").addEventListener("click", () => saveWrapUp(desk));
  $("btn-wrap-end").addEventListener("click", () => endWrapUp(desk));
}

// Queues the agent can transfer to, for the target's suggestions; and their wrap-up.
export async function loadQueues(desk) {
  try {
    const page = await desk.call("GET", "/queues?limit=500");
    desk.queues = page?.items ?? [];
  } catch {
    desk.queues = [];
  }
  if (desk.wrap && !desk.wrap.end) desk.wrap.end = wrapEnd(desk);
  renderCall(desk);
}

function renderTargets(desk) {
  const kind = $("xfer-kind").value;
  const list = $("xfer-options");
  const names = kind === "queue" ? (desk.queues ?? []).map((q) => q.name) : [];
  if (list.dataset.kind !== kind) {
    list.replaceChildren(...names.map((name) => new Option(name, name)));
    list.dataset.kind = kind;
  }
  $("xfer-target").placeholder = t(`call.targetPlaceholder.${kind}`);
  $("xfer-target").inputMode = kind === "queue" ? "text" : "tel";
}

// --- wrap-up ------------------------------------------------------------------------

// When the wrap-up ends. `GET /agents/me` and `agent` events do not carry it: it is
// taken from `wrap_up_until` if the server sends one, else from the wrap-up time of
// the call's queue (`GET /queues`) counted from when the wrap-up began.
function wrapEnd(desk) {
  const agent = desk.agent ?? {};
  if (agent.wrap_up_until) return { at: Date.parse(agent.wrap_up_until), estimated: false };
  const queue = (desk.queues ?? []).find((q) => q.name === desk.lastCall?.queue);
  if (!queue) return null;
  const elapsed = agent.state === "wrap_up" ? (agent.in_state_seconds ?? 0) : 0;
  return { at: Date.now() + (queue.wrap_up_seconds - elapsed) * 1000, estimated: true };
}

function startWrapUp(desk) {
  desk.wrap = { end: wrapEnd(desk), result: null };
  if (!desk.lastCall) findLastCall(desk);
}

// A reload during wrap-up: the call being wrapped up is the agent's newest call.
async function findLastCall(desk) {
  const me = desk.agent?.agent_id;
  if (!me) return;
  try {
    const page = await desk.call("GET", `/calls?agent_id=${encodeURIComponent(me)}&limit=1`);
    const c = page?.items?.[0];
    if (c && !desk.lastCall) {
      desk.lastCall = { call_id: c.call_id, caller: c.caller, queue: c.queue, talkSeconds: c.talk_seconds };
      if (desk.wrap && !desk.wrap.end) desk.wrap.end = wrapEnd(desk);
      renderCall(desk);
    }
  } catch {
    // nothing to wrap up is shown
  }
}

async function saveWrapUp(desk) {
  const call = desk.lastCall;
  if (!call?.call_id || !desk.wrap) return;
  desk.wrap.result = { kind: "saving" };
  renderCall(desk);
  const body = { code: $("wrap-code").value, notes: $("wrap-notes").value };
  try {
    await desk.call("PUT", `/calls/${encodeURIComponent(call.call_id)}/wrap-up`, body);
    if (desk.wrap) desk.wrap.result = { kind: "done" };
  } catch (err) {
    if (desk.wrap) desk.wrap.result = { kind: "failed", message: err.message };
  }
  renderCall(desk);
}

async function endWrapUp(desk) {
  if (!desk.wrap) return;
  try {
    desk.setAgent(await desk.call("POST", "/agents/me/end-wrap-up"));
  } catch (err) {
    if (desk.wrap) desk.wrap.result = { kind: "failed", key: "wrap.endFailed", message: err.message };
    renderCall(desk);
  }
}

// --- rendering ----------------------------------------------------------------------

export function renderCall(desk) {
  const wrapping = desk.agent?.state === "wrap_up" && desk.wrap;
  $("call").dataset.mode = wrapping ? "wrap_up" : "call";
  $("call-pane").hidden = Boolean(wrapping);
  $("wrap-pane").hidden = !wrapping;
  if (wrapping) renderWrap(desk);
  const state = callState(desk);
  const live = desk.live;
  const badge = $("call-state");
  badge.dataset.state = state;
  badge.textContent = t(`call.state.${state}`);
  $("call-caller").textContent = state === "idle" ? "" : (live?.caller ?? desk.pop?.caller ?? "");
  $("call").dataset.callId = live?.call_id ?? "";
  let detail = "";
  if (desk.busy && desk.busyLabel) detail = desk.busyLabel;
  else if (live?.transferTo) detail = t("call.transferringTo", { target: live.transferTo });
  else if (live?.consulting) detail = t("call.consultingWith", { target: live.consulting });
  else if (live?.callerHeld && CONNECTED.has(state)) detail = t("call.callerHolds");
  else if (live?.conference.length && CONNECTED.has(state))
    detail = t("call.conferenceWith", { targets: live.conference.join(", ") });
  else if (live?.note) detail = live.note;
  else if (live?.queue && state !== "idle") detail = t("call.queue", { queue: live.queue });
  $("call-detail").textContent = detail;
  const on = connected(desk) && !desk.busy;
  const consulting = Boolean(live?.consulting);
  const agentKind = $("xfer-kind").value === "agent";
  $("btn-answer").disabled = desk.agent?.state !== "ringing" || Boolean(desk.busy);
  $("btn-hangup").disabled = !on;
  $("btn-hold").disabled = !on || consulting;
  $("btn-hold").textContent = t(live?.held && !consulting ? "call.unhold" : "call.hold");
  $("btn-hold").dataset.held = String(Boolean(live?.held));
  $("btn-transfer").disabled = !on || consulting;
  $("btn-consult").disabled = !on || consulting || !agentKind;
  $("btn-conference").disabled = !on || consulting || !agentKind;
  $("btn-complete").disabled = !on || !consulting;
  $("btn-cancel-consult").disabled = !on || !consulting;
  for (const key of document.querySelectorAll("#dtmf [data-digit]")) key.disabled = !on;
  $("dtmf-sent").textContent = live?.dtmf ? t("call.dtmfSent", { digits: live.dtmf }) : "";
  const rec = $("rec-state");
  const recState = !live || !connected(desk) ? "off" : live.recordingPaused ? "paused" : "on";
  rec.dataset.state = recState;
  rec.textContent =
    recState === "off"
      ? t("call.recordingNone")
      : t(recState === "paused" ? "call.recordingPaused" : "call.recordingOn");
  $("btn-recording").disabled = !on || live?.recording === false;
  $("btn-recording").textContent = t(live?.recordingPaused ? "call.resumeRecording" : "call.pauseRecording");
  $("call-error").textContent = desk.callError ?? "";
  renderTargets(desk);
  tickCall(desk);
  desk.updateTitles?.();
}

function renderWrap(desk) {
  const call = desk.lastCall;
  $("wrap-call").textContent = call?.caller
    ? t("wrap.call", { caller: call.caller, queue: call.queue ?? "" })
    : t("wrap.noCall");
  $("btn-wrap-save").disabled = !call?.call_id || desk.wrap.result?.kind === "saving";
  const result = $("wrap-result");
  const r = desk.wrap.result;
  result.dataset.kind = r?.kind ?? "";
  result.textContent = !r
    ? ""
    : r.kind === "done"
      ? t("wrap.saved")
      : r.kind === "saving"
        ? t("wrap.saving")
        : t(r.key ?? "wrap.failed", { message: r.message });
}

// Once a second: the talk timer and the wrap-up countdown.
export function tickCall(desk) {
  const live = desk.live;
  const timer = $("call-timer");
  const running = live?.talkSince && CONNECTED.has(callState(desk));
  timer.textContent = formatClock(running ? (Date.now() - live.talkSince) / 1000 : 0);
  timer.dataset.running = String(Boolean(running));
  const countdown = $("wrap-countdown");
  const end = desk.wrap?.end;
  if (!desk.wrap) countdown.textContent = "";
  else if (!end) countdown.textContent = t("wrap.unknownEnd");
  else {
    const left = (end.at - Date.now()) / 1000;
    countdown.textContent = left > 0 ? t("wrap.remaining", { time: formatClock(left) }) : t("wrap.overdue");
    countdown.title = end.estimated ? t("wrap.estimated") : "";
  }
}
