// The dashboard: every source with its live state, a chart of its last day, and actions.
import { api, describeError } from "./api.js";
import { announce, reportError } from "./feedback.js";
import { syncChart } from "./chart.js";
import { bytes, h, when } from "./dom.js";
import { t } from "./i18n.js";
import { reconnectButton } from "./oauth2_connect.js";

const REFRESH_MS = 3000;

// The server's warning text is English; the panel shows its own words for each warning code.
function warningText(warning) {
  const key = `warning.${warning.code}`;
  const text = t(key);
  return text === key ? warning.message : text;
}

function row(label, value) {
  return [h("dt", {}, label), h("dd", {}, value ?? t("never"))];
}

// `result` outlives the card: the card is rebuilt on every refresh, a test's outcome stays.
function sourceCard(source, history, refresh, result) {
  const s = source.status;
  const state = s.syncing ? t("syncing") : t(`state.${s.state}`);
  const test = async () => {
    result.textContent = t("test.running");
    try {
      const outcome = await api("POST", `/api/sources/${source.id}/test`);
      result.className = outcome.ok ? "result ok" : "result error";
      result.textContent = outcome.ok
        ? t("test.ok")
        : t("test.failed", { step: t(`step.${outcome.failed_step}`), message: outcome.message });
    } catch (error) {
      result.textContent = describeError(error);
    }
  };
  const sync = async () => {
    try {
      await api("POST", `/api/sources/${source.id}/sync`);
      announce(t("sync.requested", { name: source.name }));
      setTimeout(refresh, 500);
    } catch (error) {
      reportError(error);
    }
  };
  const remove = async () => {
    if (!confirm(t("confirm.delete", { name: source.name }))) return;
    try {
      await api("DELETE", `/api/sources/${source.id}`);
      refresh();
    } catch (error) {
      reportError(error);
    }
  };
  const budget = s.budget_bytes_limit
    ? `${bytes(s.budget_bytes_used)} / ${bytes(s.budget_bytes_limit)}`
    : bytes(s.budget_bytes_used);
  return h("article", { class: `card source state-${s.state}`, "aria-labelledby": `source-${source.id}`, "data-source": source.name },
    h("header", {},
      h("h3", { id: `source-${source.id}` }, source.name),
      h("span", { class: `badge ${s.state}`, "data-testid": "state" }, state)),
    h("p", { class: "muted" }, `${source.protocol.toUpperCase()} · ${source.username} @ ${source.host}:${source.port}`),
    source.warnings.length
      ? h("ul", { class: "warnings" }, source.warnings.map((w) => h("li", { "data-code": w.code, title: w.message }, warningText(w))))
      : null,
    h("dl", {},
      row(t("status.messages"), h("span", { "data-testid": "messages" }, String(s.messages_fetched))),
      row(t("status.lastSuccess"), when(s.last_success_at)),
      row(t("status.nextRun"), when(s.next_run_at)),
      row(t("status.budget"), budget),
      s.last_error ? row(t("status.error"), `${s.last_error_class}: ${s.last_error} (${when(s.last_error_at)})`) : null,
      s.folders.length ? row(t("status.folders"), s.folders.join(", ")) : null),
    history.length ? syncChart(history, t("chart.label")) : h("p", { class: "muted" }, t("chart.empty")),
    h("div", { class: "actions" },
      s.state === "reconnect_needed" ? reconnectButton(source) : null,
      h("button", { type: "button", onclick: sync }, t("action.sync")),
      h("button", { type: "button", onclick: test }, t("action.test")),
      h("a", { class: "button", href: `#/edit/${source.id}` }, t("action.edit")),
      h("button", { type: "button", class: "danger", onclick: remove }, t("action.delete"))),
    result);
}

export function showDashboard(main) {
  const list = h("div", { class: "grid", "aria-live": "off" });
  main.replaceChildren(h("h2", {}, t("sources.title")), list);
  let timer = null;
  let stopped = false;
  const results = new Map();
  const refresh = async () => {
    clearTimeout(timer);
    try {
      const sources = await api("GET", "/api/sources");
      const histories = await Promise.all(sources.map((s) => api("GET", `/api/sources/${s.id}/history`)));
      if (stopped) return;
      const focused = document.activeElement?.closest("article")?.dataset.source;
      const focusedText = document.activeElement?.textContent;
      list.replaceChildren(...(sources.length
        ? sources.map((source, i) => {
          if (!results.has(source.id)) results.set(source.id, h("p", { class: "result", role: "status", "aria-live": "polite" }));
          return sourceCard(source, histories[i], refresh, results.get(source.id));
        })
        : [h("p", {}, t("sources.none"), " ", h("a", { href: "#/add" }, t("nav.add")))]));
      if (focused) {
        const again = [...list.querySelectorAll(`article[data-source="${CSS.escape(focused)}"] button, article[data-source="${CSS.escape(focused)}"] a`)]
          .find((node) => node.textContent === focusedText);
        again?.focus();
      }
    } catch (error) {
      reportError(error);
    }
    if (!stopped) timer = setTimeout(refresh, REFRESH_MS);
  };
  refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
