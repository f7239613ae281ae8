// The outbound queue: mail waiting to leave, deferred after a failed try, or bounced, with
// retry and drop. Administrators see everyone's. Refreshes itself while shown.
import { api } from "./api.js";
import { h, when } from "./dom.js";
import { announce, reportError } from "./feedback.js";
import { t } from "./i18n.js";
import "./sending_text.js";

const REFRESH_MS = 5000;

function actions(message, refresh) {
  const act = async (verb, done) => {
    try {
      await api("POST", `/api/queue/${message.id}/${verb}`);
      announce(t(done, { id: message.id }));
      refresh();
    } catch (failure) {
      reportError(failure);
    }
  };
  const buttons = [];
  if (message.state !== "relayed") {
    buttons.push(h("button", { type: "button", "aria-label": `${t("queue.retry")} ${message.id}`, onclick: () => act("retry", "queue.retried") }, t("queue.retry")));
  }
  if (message.state === "queued" || message.state === "deferred") {
    buttons.push(h("button", {
      type: "button", class: "danger", "aria-label": `${t("queue.drop")} ${message.id}`,
      onclick: () => window.confirm(t("queue.confirmDrop", { id: message.id })) && act("drop", "queue.dropped"),
    }, t("queue.drop")));
  }
  return h("div", { class: "actions tight" }, buttons);
}

function table(messages, showUser, refresh) {
  const headings = ["queue.id", ...(showUser ? ["queue.user"] : []), "queue.from", "queue.to", "queue.state",
    "queue.attempts", "queue.next", "queue.error", "queue.actions"];
  return h("div", { class: "scroll" }, h("table", { class: "queue" },
    h("caption", { class: "sr-only" }, t("queue.caption")),
    h("thead", {}, h("tr", {}, headings.map((key) => h("th", { scope: "col" }, t(key))))),
    h("tbody", {}, messages.map((message) => h("tr", { "data-queue-id": message.id },
      h("td", {}, String(message.id)),
      showUser ? h("td", {}, message.user_name) : null,
      h("td", {}, message.sender),
      h("td", {}, message.recipients.join(", ")),
      h("td", {}, h("span", { class: `badge ${message.state}`, "data-testid": "queue-state" }, t(`queue.state.${message.state}`))),
      h("td", {}, String(message.attempts)),
      h("td", {}, when(message.next_attempt_at) ?? "—"),
      h("td", { class: "muted" }, message.last_error ?? "—"),
      h("td", {}, actions(message, refresh)))))));
}

export function showQueue(main, isAdmin) {
  const body = h("div");
  const refresh = async () => {
    try {
      const messages = await api("GET", "/api/queue");
      body.replaceChildren(messages.length ? table(messages, isAdmin, refresh) : h("p", { class: "muted" }, t("queue.none")));
    } catch (failure) {
      reportError(failure);
    }
  };
  main.replaceChildren(h("section", { class: "card", "aria-labelledby": "page-title" },
    h("h2", { id: "page-title" }, t("queue.title")), h("p", { class: "muted" }, t("queue.help")),
    h("div", { class: "actions" }, h("button", { type: "button", onclick: refresh }, t("queue.refresh"))), body));
  refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  return () => clearInterval(timer);
}
