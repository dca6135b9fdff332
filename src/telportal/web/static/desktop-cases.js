// The agent desktop's cases: "My cases" (the open cases assigned to the agent, with
// their SLA deadlines counting down live and their alarms), and adding a note to
// one of the caller's open cases from the screen pop.
import { el, formatDateTime, formatSpan, notify, t } from "./common.js";

const $ = (id) => document.getElementById(id);

const CLOSED = new Set(["resolved", "feedback_received", "closed"]);
const SOON_SECONDS = 15 * 60; // a deadline this close is shown as near

function translated(prefix, value) {
  const key = `${prefix}.${value}`;
  const text = t(key);
  return text === key ? value : text;
}

// The agent's name as cases store it (assignees are user names: "1001").
function me(desk) {
  return desk.agent?.username ?? desk.session?.username?.split("@")[0] ?? "";
}

// The case's next deadline: the earliest pending SLA target, and whether it is in
// its warning stretch (a pending warning timer whose time has come).
function deadline(c, now = Date.now()) {
  let due = null;
  let warnAt = null;
  for (const timer of c.sla ?? []) {
    const at = Date.parse(timer.due_at);
    if (!Number.isNaN(at) && (due === null || at < due.at)) due = { at, target: timer.target };
    if (timer.level === "warning") {
      const fire = Date.parse(timer.fire_at);
      if (warnAt === null || fire < warnAt) warnAt = fire;
    }
  }
  if (!due) return null;
  return { ...due, warning: warnAt !== null && warnAt <= now };
}

function dueKind(c, now = Date.now()) {
  if (c.breached) return "overdue";
  const d = deadline(c, now);
  if (!d) return "none";
  if (d.at <= now) return "overdue";
  if (d.warning || d.at - now <= SOON_SECONDS * 1000) return "soon";
  return "ok";
}

function sortKey(c) {
  if (c.breached) return -Infinity;
  return deadline(c)?.at ?? Infinity;
}

// --- my cases -----------------------------------------------------------------------

export async function loadMyCases(desk) {
  const name = me(desk);
  if (!name) return;
  const q = `assignee=${encodeURIComponent(name)}&limit=200`;
  try {
    const [all, breached] = await Promise.all([
      desk.call("GET", `/cases?${q}`),
      desk.call("GET", `/cases?${q}&breached=true`),
    ]);
    const late = new Set((breached?.items ?? []).map((c) => c.id));
    desk.cases = (all?.items ?? [])
      .filter((c) => !CLOSED.has(c.state))
      .map((c) => ({ ...c, breached: late.has(c.id) }))
      .sort((a, b) => sortKey(a) - sortKey(b) || b.number - a.number);
    desk.casesLoadedAt = Date.now();
    $("cases-error").textContent = "";
  } catch (err) {
    if (err.status !== 401) $("cases-error").textContent = t("cases.failed", { message: err.message });
  }
  renderCases(desk);
}

// Several events in a row (a case's own `data` events) make one reload.
export function reloadCasesSoon(desk) {
  clearTimeout(desk.casesTimer);
  desk.casesTimer = setTimeout(() => {
    loadMyCases(desk);
    loadPopCases(desk);
  }, 250);
}

export function renderCases(desk) {
  const cases = desk.cases ?? [];
  const list = $("my-cases");
  if (!cases.length) {
    list.replaceChildren(el("li", { class: "muted empty" }, t("cases.empty")));
  } else {
    list.replaceChildren(
      ...cases.map((c) => {
        const alert = desk.caseAlerts.get(c.id);
        const item = el(
          "li",
          {
            dataset: { caseId: c.id, number: String(c.number) },
            tabindex: "0",
            title: t("cases.openHint"),
          },
          el("div", { class: "case-title" }, `#${c.number} ${c.subject}`),
          el(
            "div",
            { class: "case-meta" },
            el("span", { class: "case-state" }, translated("cases.state", c.state)),
            el("span", { class: "case-due" }),
          ),
        );
        if (alert) item.dataset.alert = alert;
        item.addEventListener("click", () => openCase(desk, c));
        item.addEventListener("keydown", (ev) => {
          if (ev.key === "Enter") openCase(desk, c);
        });
        return item;
      }),
    );
  }
  const count = $("cases-count");
  count.textContent = String(cases.length);
  count.dataset.alert = String(cases.some((c) => desk.caseAlerts.has(c.id) || dueKind(c) === "overdue"));
  $("cases-updated").textContent = desk.casesLoadedAt
    ? t("cases.updated", { time: formatDateTime(desk.casesLoadedAt, { date: false }) })
    : "";
  tickCases(desk);
}

// Once a second: every "due in" / "overdue" text (only the text changes).
export function tickCases(desk) {
  const now = Date.now();
  const byId = new Map((desk.cases ?? []).map((c) => [c.id, c]));
  for (const item of document.querySelectorAll("#my-cases li[data-case-id]")) {
    const c = byId.get(item.dataset.caseId);
    if (!c) continue;
    const kind = dueKind(c, now);
    const d = deadline(c, now);
    const due = item.querySelector(".case-due");
    item.dataset.due = kind;
    due.dataset.due = kind;
    if (d) {
      due.dataset.dueAt = new Date(d.at).toISOString();
      const when = formatDateTime(d.at);
      const span = formatSpan((d.at - now) / 1000);
      const target = translated("cases.target", d.target);
      due.textContent =
        d.at > now
          ? t("cases.dueIn", { target, time: when, span })
          : t("cases.overdue", { target, time: when, span });
    } else {
      due.textContent = c.breached ? t("cases.breached") : t("cases.noDue");
    }
  }
}

function openCase(desk, c) {
  if (desk.caseAlerts.delete(c.id)) renderCases(desk);
  if (c.customer_id) desk.openCustomer(c.customer_id);
}

// A `case` event: an SLA alert (`level` warning / breach) or an escalation step
// (`chain_id`). For this agent when the case is theirs or they are the one notified.
export function caseEvent(desk, event) {
  const name = me(desk);
  if (!name || (event.assignee !== name && event.notify !== name)) return;
  const escalated = Boolean(event.chain_id);
  const level = escalated ? "escalated" : event.level;
  const previous = desk.caseAlerts.get(event.case_id);
  // a breach outranks a warning; an escalation is shown as such
  if (!(previous === "breach" && level === "warning")) desk.caseAlerts.set(event.case_id, level);
  const target = translated("cases.target", event.target ?? "");
  const text = escalated
    ? t("notice.escalated", { number: event.case_number, level: event.level })
    : t(level === "breach" ? "notice.breach" : "notice.warning", {
        number: event.case_number,
        target,
      });
  notify($("notices"), text, {
    level: escalated ? "breach" : level,
    data: { caseId: event.case_id, kind: level },
  });
  reloadCasesSoon(desk);
}

// --- the caller's open cases, from the pop ------------------------------------------

export async function loadPopCases(desk) {
  const pop = desk.pop;
  if (!pop) return;
  const customerId = pop.customer?.id;
  let cases = [];
  if (customerId) {
    try {
      const page = await desk.call(
        "GET",
        `/cases?customer_id=${encodeURIComponent(customerId)}&limit=100`,
      );
      cases = (page?.items ?? []).filter((c) => !CLOSED.has(c.state));
    } catch {
      cases = [];
    }
  }
  if (desk.pop !== pop) return;
  pop.openCases = cases;
  renderPopCases(desk);
}

export function renderPopCases(desk) {
  const pop = desk.pop;
  const select = $("case-open");
  const cases = pop?.openCases ?? [];
  const chosen = select.value;
  if (!cases.length) {
    select.replaceChildren(new Option(t("pop.noOpenCases"), ""));
  } else {
    select.replaceChildren(
      ...cases.map((c) =>
        new Option(t("pop.caseOption", { number: c.number, subject: c.subject, state: translated("cases.state", c.state) }), c.id),
      ),
    );
    if (cases.some((c) => c.id === chosen)) select.value = chosen;
  }
  select.disabled = !cases.length;
  const state = pop?.noteState;
  const result = $("case-note-result");
  result.dataset.kind = state?.kind ?? "";
  result.textContent = !state
    ? ""
    : state.kind === "done"
      ? t("pop.noteAdded", { number: state.number })
      : state.kind === "adding"
        ? t("pop.noteAdding")
        : t("pop.noteFailed", { message: state.message });
  $("btn-case-note").disabled = !cases.length || state?.kind === "adding";
}

export async function addNote(desk) {
  const pop = desk.pop;
  const caseId = $("case-open").value;
  const chosen = pop?.openCases?.find((c) => c.id === caseId);
  if (!pop || !chosen) return;
  const text = $("case-note").value.trim() || t("pop.noteText", pop);
  pop.noteState = { kind: "adding" };
  renderPopCases(desk);
  try {
    // The note names the call, so the case's history links it (not only its text).
    const body = pop.call_id ? { text, call_id: pop.call_id } : { text };
    const updated = await desk.call("POST", `/cases/${encodeURIComponent(caseId)}/note`, body);
    pop.noteState = { kind: "done", number: updated.number };
    desk.noteEdited = false;
  } catch (err) {
    pop.noteState = { kind: "failed", message: err.message };
  }
  if (desk.pop === pop) renderPopCases(desk);
}
