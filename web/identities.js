// Identities: the addresses a user sends as, each with the provider's server that relays it.
// The relay password is write-only: the page says whether one is saved, never what it is.
import { api, describeError } from "./api.js";
import { h, field } from "./dom.js";
import { announce, reportError } from "./feedback.js";
import { t } from "./i18n.js";
import "./sending_text.js";

const PORT_OF = { tls: 465, starttls: 587 };

function choice(label, name, choices, value) {
  const [wrapper, input] = field(label, { tag: "select", name });
  for (const [option, text] of choices) input.append(h("option", { value: option }, text));
  input.value = value;
  return [wrapper, input];
}

function checkbox(label, name, checked, help = "") {
  const id = `identity-${name}`;
  const input = h("input", { type: "checkbox", id, name, checked, "aria-describedby": help ? `${id}-help` : undefined });
  return [h("div", { class: "field check" }, input, h("label", { for: id }, label),
    help ? h("small", { id: `${id}-help` }, help) : null), input];
}

function summary(identity) {
  const login = identity.relay_username === identity.address
    ? t("identities.loginSame") : t("identities.login", { name: identity.relay_username });
  const parts = [`${identity.relay_security}://${identity.relay_host}:${identity.relay_port}`, login,
    identity.has_relay_secret ? t("identities.ownSecret")
      : identity.source_id !== null ? t("identities.sourceSecret") : t("identities.noSecret")];
  if (identity.save_to_source_sent) parts.push(t("identities.sentCopyOn"));
  return parts.join(" · ");
}

// The add form (existing === null) or the edit form of one identity.
function identityForm(existing, sources, done) {
  const securities = [["starttls", t("security.starttls587")], ["tls", t("security.tls465")]];
  if (existing?.relay_security === "none") securities.push(["none", t("security.none")]);
  const [addressField, address] = field(t("identities.address"), { name: "address", type: "email", required: true, autocomplete: "off" });
  const [displayField, display] = field(t("identities.display"), { name: "display_name", value: existing?.display_name ?? "", maxlength: 255 });
  const [sourceField, source] = choice(t("identities.source"), "source_id",
    [["", t("identities.noSource")], ...sources.map((s) => [String(s.id), `${s.name} (${s.username})`])], "");
  const [hostField, host] = field(t("identities.host"), { name: "relay_host", value: existing?.relay_host ?? "", autocomplete: "off", maxlength: 255 });
  const [securityField, security] = choice(t("identities.security"), "relay_security", securities, existing?.relay_security ?? "starttls");
  const [portField, port] = field(t("identities.port"), { name: "relay_port", type: "number", min: 1, max: 65535, value: existing?.relay_port ?? "" });
  const [userField, username] = field(t("identities.username"), { name: "relay_username", value: existing?.relay_username ?? "", autocomplete: "off", maxlength: 320 });
  const [secretField, secret] = field(existing ? t("identities.secretKeep") : t("identities.secret"),
    { name: "relay_secret", type: "password", autocomplete: "new-password" }, t("identities.secretHelp"));
  const [forgetField, forget] = checkbox(t("identities.useSourceSecret"), "use_source_secret", false);
  const [sentField, sentCopy] = checkbox(t("identities.sentCopy"), "save_to_source_sent", !!existing?.save_to_source_sent, t("identities.sentCopyHelp"));
  security.addEventListener("change", () => {
    if (!port.value || Object.values(PORT_OF).includes(Number(port.value))) port.value = PORT_OF[security.value] ?? port.value;
  });
  const error = h("p", { class: "error", role: "alert" });
  const relay = h("fieldset", { class: "retention" }, h("legend", {}, t("identities.relayLegend")),
    existing ? null : h("p", { class: "muted" }, t("identities.relayHelp")),
    h("div", { class: "columns" }, hostField, securityField, portField, userField), secretField,
    existing?.has_relay_secret ? forgetField : null);
  const titleId = existing ? "identity-edit-title" : "identity-add-title";
  const form = h("form", { class: "card identity-form", "aria-labelledby": titleId },
    h("h3", { id: titleId }, existing ? t("identities.editTitle", { address: existing.address }) : t("identities.addTitle")),
    h("div", { class: "columns" }, existing ? null : addressField, displayField, existing ? null : sourceField),
    relay, sentField, error,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, existing ? t("action.save") : t("action.add")),
      existing ? h("button", { type: "button", onclick: () => done(null) }, t("action.cancel")) : null));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const body = { display_name: display.value, save_to_source_sent: sentCopy.checked };
    for (const [name, input] of [["relay_host", host], ["relay_username", username]]) {
      if (input.value.trim()) body[name] = input.value.trim();
    }
    if (port.value) body.relay_port = Number(port.value);
    // Sent only when chosen: on add, with a server or port (else the provider's default); on edit,
    // when changed (an unchanged "none" would need allow_plaintext sent again).
    if (existing ? security.value !== existing.relay_security : host.value.trim() || port.value) body.relay_security = security.value;
    if (secret.value) body.relay_secret = secret.value;
    try {
      let saved;
      if (existing) {
        if (forget.checked && !secret.value) body.use_source_secret = true;
        saved = await api("PATCH", `/api/identities/${existing.id}`, body);
      } else {
        body.address = address.value.trim();
        if (source.value) body.source_id = Number(source.value);
        saved = await api("POST", "/api/identities", body);
      }
      secret.value = "";
      announce(t("identities.saved", { address: saved.address }));
      done(saved);
    } catch (failure) {
      secret.value = "";
      error.textContent = describeError(failure);
    }
  });
  return form;
}

export async function showIdentities(main) {
  const list = h("ul", { class: "plain" });
  const formSlot = h("div");
  let sources = [];
  const showAddForm = () => formSlot.replaceChildren(identityForm(null, sources, finished));
  const edit = (identity) => {
    formSlot.replaceChildren(identityForm(identity, sources, finished));
    formSlot.querySelector("input:not([type=hidden])")?.focus();
  };
  const remove = async (identity) => {
    if (!window.confirm(t("identities.confirmDelete", { address: identity.address }))) return;
    try {
      await api("DELETE", `/api/identities/${identity.id}`);
      announce(t("identities.removed", { address: identity.address }));
      refresh();
    } catch (failure) {
      reportError(failure);
    }
  };
  const item = (identity) => h("li", { "data-identity": identity.address },
    h("strong", {}, identity.display_name ? `${identity.display_name} <${identity.address}>` : identity.address),
    h("div", { class: "muted" }, summary(identity)),
    h("div", { class: "actions" },
      h("button", { type: "button", "aria-label": `${t("action.edit")} ${identity.address}`, onclick: () => edit(identity) }, t("action.edit")),
      h("button", { type: "button", class: "danger", "aria-label": `${t("action.delete")} ${identity.address}`, onclick: () => remove(identity) }, t("action.delete"))));
  async function refresh() {
    try {
      const identities = await api("GET", "/api/identities");
      list.replaceChildren(...(identities.length ? identities.map(item) : [h("li", { class: "muted" }, t("identities.none"))]));
    } catch (failure) {
      reportError(failure);
    }
  }
  function finished() {
    showAddForm();
    refresh();
  }
  main.replaceChildren(h("section", { class: "card", "aria-labelledby": "page-title" },
    h("h2", { id: "page-title" }, t("identities.title")), h("p", { class: "muted" }, t("identities.help")), list), formSlot);
  try {
    sources = await api("GET", "/api/sources");
  } catch (failure) {
    reportError(failure);
  }
  showAddForm();
  refresh();
}
