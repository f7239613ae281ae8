// API tokens: a list and a small form (identities, users and the queue have their own modules).
import { api, describeError } from "./api.js";
import { h, field, when } from "./dom.js";
import { reportError } from "./feedback.js";
import { t } from "./i18n.js";

function listPage(main, { title, help, empty, load, item, formFields, create }) {
  const list = h("ul", { class: "plain" });
  const error = h("p", { class: "error", role: "alert" });
  const extra = h("div", { role: "status", "aria-live": "polite" });
  const refresh = async () => {
    try {
      const items = await load();
      list.replaceChildren(...(items.length ? items.map((entry) => item(entry, refresh)) : [h("li", { class: "muted" }, empty)]));
    } catch (failure) {
      reportError(failure);
    }
  };
  const inputs = formFields.map(([label, attributes]) => field(label, attributes));
  const form = h("form", { class: "inline" }, inputs.map(([wrapper]) => wrapper), h("button", { type: "submit" }, t("action.add")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      const shown = await create(Object.fromEntries(inputs.map(([, input]) => [input.name, input.type === "checkbox" ? input.checked : input.value])));
      extra.replaceChildren(...(shown ? [shown] : []));
      form.reset();
      refresh();
    } catch (failure) {
      error.textContent = describeError(failure);
    }
  });
  main.replaceChildren(h("section", { class: "card", "aria-labelledby": "page-title" },
    h("h2", { id: "page-title" }, title), help ? h("p", { class: "muted" }, help) : null, list, form, error, extra));
  refresh();
}

function removeButton(label, path, refresh) {
  return h("button", {
    type: "button", class: "danger", onclick: async () => {
      try {
        await api("DELETE", path);
        refresh();
      } catch (failure) {
        reportError(failure);
      }
    },
  }, label);
}

export function showTokens(main) {
  listPage(main, {
    title: t("tokens.title"), help: t("tokens.help"), empty: t("tokens.none"),
    load: () => api("GET", "/api/tokens"),
    item: (token, refresh) => h("li", {}, `${token.name} · ${when(token.created_at)}`,
      token.last_used_at ? ` · ${t("tokens.lastUsed")} ${when(token.last_used_at)}` : "", " ",
      removeButton(t("action.revoke"), `/api/tokens/${token.id}`, refresh)),
    formFields: [[t("tokens.name"), { name: "name", required: true, maxlength: 100 }]],
    create: async (values) => {
      const created = await api("POST", "/api/tokens", values);
      return h("p", {}, t("tokens.created"), " ", h("code", { class: "secret" }, created.token));
    },
  });
}
