// The agent desktop's customer search and timeline: find a customer by phone, email,
// their id or the enterprise's id, and show everything that happened with them
// (calls, cases, interactions pushed by other systems), newest first.
import { el, formatDateTime, t } from "./common.js";

const $ = (id) => document.getElementById(id);

function translated(prefix, value) {
  const key = `${prefix}.${value}`;
  const text = t(key);
  return text === key ? value : text;
}

export function initCustomers(desk) {
  $("cust-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    search(desk, $("cust-kind").value, $("cust-query").value.trim());
  });
  $("cust-matches").addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-customer-id]");
    if (button) openCustomer(desk, button.dataset.customerId);
  });
}

async function search(desk, kind, value) {
  if (!value) return;
  desk.customerError = "";
  desk.customerMatches = [];
  let customer = null;
  try {
    if (kind === "name") {
      const found = await desk.call("GET", `/customers/search?q=${encodeURIComponent(value)}`);
      if (found.length === 1) customer = found[0];
      else if (!found.length) desk.customerError = t("cust.notFound");
      else desk.customerMatches = found; // several: the agent picks one
    } else {
      customer =
        kind === "id"
          ? await desk.call("GET", `/customers/${encodeURIComponent(value)}`)
          : await desk.call("GET", `/customers/lookup?${kind}=${encodeURIComponent(value)}`);
    }
  } catch (err) {
    desk.customerError =
      err.status === 404 ? t("cust.notFound") : t("cust.failed", { message: err.message });
  }
  desk.customer = customer;
  desk.timeline = null;
  renderCustomer(desk);
  if (customer) await loadTimeline(desk);
}

// From the pop's customer card, or a case of "My cases".
export async function openCustomer(desk, customerId) {
  desk.showTab("customers");
  $("cust-kind").value = "id";
  $("cust-query").value = customerId;
  await search(desk, "id", customerId);
}

export async function loadTimeline(desk) {
  const customer = desk.customer;
  if (!customer) return;
  try {
    const entries = await desk.call(
      "GET",
      `/customers/${encodeURIComponent(customer.id)}/timeline?limit=100`,
    );
    if (desk.customer === customer) desk.timeline = entries ?? [];
  } catch (err) {
    if (desk.customer === customer) {
      desk.customerError = t("cust.failed", { message: err.message });
      desk.timeline = [];
    }
  }
  renderCustomer(desk);
}

// `data` events about customers, their interactions or cases: the shown timeline
// may have changed (the events do not say whose), so it is read again, once.
export function reloadTimelineSoon(desk) {
  if (!desk.customer) return;
  clearTimeout(desk.timelineTimer);
  desk.timelineTimer = setTimeout(() => loadTimeline(desk), 300);
}

function stars(importance) {
  const n = Math.max(0, Math.min(5, Math.round(Number(importance) || 0)));
  return "★".repeat(n) + "☆".repeat(5 - n);
}

export function renderCustomer(desk) {
  const c = desk.customer;
  const matches = c ? [] : (desk.customerMatches ?? []);
  $("cust-card").dataset.empty = c ? "false" : "true";
  $("cust-hint").hidden = Boolean(c) || Boolean(desk.customerError) || matches.length > 0;
  $("cust-matches").hidden = !matches.length;
  $("cust-matches").replaceChildren(
    ...matches.map((m) =>
      el(
        "li",
        {},
        el(
          "button",
          { type: "button", class: "match", dataset: { customerId: m.id } },
          `${m.name || t("pop.unknownCustomer")} ${stars(m.importance)}`,
        ),
      ),
    ),
  );
  $("cust-body").hidden = !c;
  $("cust-error").textContent = desk.customerError ?? "";
  if (c) {
    $("cust-body").dataset.customerId = c.id;
    $("cust-name").textContent = c.name || t("pop.unknownCustomer");
    $("cust-stars").textContent = stars(c.importance);
    $("cust-stars").title = t("pop.importanceValue", { value: c.importance });
    const ids = (c.identities ?? []).map((i) => i.value);
    if (c.external_id) ids.push(c.external_id);
    $("cust-ids").textContent = ids.join(" · ");
  }
  const list = $("timeline");
  const entries = desk.timeline;
  if (!c || entries === null || entries === undefined) {
    list.replaceChildren();
  } else if (!entries.length) {
    list.replaceChildren(el("li", { class: "muted" }, t("cust.timelineEmpty")));
  } else {
    list.replaceChildren(
      ...entries.map((e) =>
        el(
          "li",
          { dataset: { kind: e.kind, ref: e.ref } },
          el("span", { class: "kind" }, translated("timeline.kind", e.kind)),
          el("span", { class: "when", title: e.at }, formatDateTime(e.at)),
          el("span", { class: "summary" }, e.summary || e.channel || ""),
        ),
      ),
    );
  }
}
