// Add or edit a source: suggest settings from the address, test before saving, and the
// retention choice explained in plain words (deleting mail at the source is where people get
// hurt, so it is never the default and its consequence is spelled out).
import { api, describeError } from "./api.js";
import { h, field } from "./dom.js";
import { reportError } from "./feedback.js";
import { t } from "./i18n.js";
import { addConnectCard } from "./oauth2_connect.js";

const DEFAULT_PORTS = { imap: { tls: 993, starttls: 143, none: 143 }, pop3: { tls: 995, starttls: 110, none: 110 } };

function select(label, name, choices, value) {
  const [wrapper, input] = field(label, { tag: "select", name });
  for (const [choice, text] of choices) input.append(h("option", { value: choice }, text));
  input.value = value;
  return [wrapper, input];
}

function retentionChoices(current) {
  const group = h("fieldset", { class: "retention" }, h("legend", {}, t("retention.legend")));
  const days = field(t("retention.days"), { type: "number", name: "retention_days", min: 0, step: 1, value: current.retention_days ?? 30 });
  for (const [mode, key] of [["keep", "keep"], ["delete_after_download", "after_download"], ["delete_after_days", "after_days"]]) {
    const id = `retention-${mode}`;
    group.append(h("div", { class: "choice" },
      h("input", { type: "radio", name: "retention", id, value: mode, checked: (current.retention ?? "keep") === mode, "aria-describedby": `${id}-help` }),
      h("label", { for: id }, t(`retention.${key}`)),
      h("small", { id: `${id}-help` }, t(`retention.${key}Help`))));
  }
  group.append(days[0]);
  return group;
}

export async function showSourceForm(main, sourceId) {
  let existing = null;
  if (sourceId !== null) {
    try {
      existing = await api("GET", `/api/sources/${sourceId}`);
    } catch (error) {
      reportError(error);
      return;
    }
  }
  const options = existing?.options ?? {};
  const [addressField, address] = field(t("form.address"), { type: "email", name: "address", autocomplete: "email" }, t("form.suggestHelp"));
  const suggestButton = h("button", { type: "button" }, t("form.suggest"));
  const suggestResult = h("p", { class: "result", role: "status", "aria-live": "polite" });
  const [nameField, name] = field(t("form.name"), { name: "name", required: true, value: existing?.name ?? "", disabled: !!existing, maxlength: 255 });
  const [protocolField, protocol] = select(t("form.protocol"), "protocol", [["imap", "IMAP"], ["pop3", "POP3"]], existing?.protocol ?? "imap");
  protocol.disabled = !!existing;
  const [hostField, host] = field(t("form.host"), { name: "host", required: true, value: existing?.host ?? "", autocomplete: "off" });
  const [securityField, security] = select(t("form.security"), "security", [
    ["tls", t("security.tls")], ["starttls", t("security.starttls")], ["none", t("security.none")],
  ], existing?.security ?? "tls");
  const [portField, port] = field(t("form.port"), { name: "port", type: "number", min: 1, max: 65535, required: true, value: existing?.port ?? 993 });
  const [plainField, plaintext] = [h("div", { class: "field check" }), h("input", { type: "checkbox", id: "allow-plaintext", name: "allow_plaintext", checked: !!options.allow_plaintext })];
  plainField.append(plaintext, h("label", { for: "allow-plaintext" }, t("form.plaintext")));
  const [userField, username] = field(t("form.username"), { name: "username", required: true, value: existing?.username ?? "", autocomplete: "off" });
  const [passwordField, password] = field(existing ? t("form.passwordKeep") : t("form.password"), {
    name: "password", type: "password", required: !existing, autocomplete: "new-password",
  });
  const [intervalField, interval] = field(t("form.interval"), { name: "poll_interval", type: "number", min: 10, value: existing?.poll_interval ?? 60 });
  const [foldersField, folders] = field(t("form.folders"), { name: "folders", value: (options.folders ?? []).join(", ") });
  const [deleteField, deletePolicy] = select(t("delete.label"), "delete_policy", [
    ["trash", t("delete.trash")], ["keep", t("delete.keep")], ["expunge", t("delete.expunge")],
  ], options.delete_policy ?? "trash");
  const deleteHelp = h("small", { id: "delete-help" });
  deletePolicy.setAttribute("aria-describedby", "delete-help");
  deleteField.append(deleteHelp);
  const explainDelete = () => { deleteHelp.textContent = t(`delete.${deletePolicy.value}Help`); };
  deletePolicy.addEventListener("change", explainDelete);
  explainDelete();
  const retention = retentionChoices(options);
  const testResult = h("p", { class: "result", role: "status", "aria-live": "polite", id: "test-result" });
  const saveError = h("p", { class: "error", role: "alert" });

  const sync = () => {
    plainField.hidden = security.value !== "none";
    retention.hidden = protocol.value !== "pop3";
    foldersField.hidden = protocol.value !== "imap";
    deleteField.hidden = protocol.value !== "imap";
  };
  const adjustPort = () => { port.value = DEFAULT_PORTS[protocol.value][security.value]; };
  protocol.addEventListener("change", () => { adjustPort(); sync(); });
  security.addEventListener("change", () => { adjustPort(); sync(); });
  sync();

  suggestButton.addEventListener("click", async () => {
    suggestResult.textContent = "…";
    try {
      const found = await api("GET", `/api/suggest?address=${encodeURIComponent(address.value)}`);
      const server = found.servers.find((s) => s.protocol === protocol.value) ?? found.servers.find((s) => s.protocol !== "smtp");
      if (!server) {
        suggestResult.textContent = t("form.notFound");
        return;
      }
      protocol.value = server.protocol;
      host.value = server.host;
      security.value = server.security;
      port.value = server.port;
      username.value = server.username;
      if (!name.value) name.value = address.value.split("@")[1] ?? "";
      sync();
      suggestResult.textContent = t("form.suggested", { origin: found.origin });
    } catch (error) {
      suggestResult.textContent = describeError(error);
    }
  });

  const collectOptions = () => {
    const chosen = {};
    if (security.value === "none" && plaintext.checked) chosen.allow_plaintext = true;
    if (protocol.value === "imap") {
      const names = folders.value.split(",").map((f) => f.trim()).filter(Boolean);
      if (names.length) chosen.folders = names;
      if (deletePolicy.value !== "trash" || "delete_policy" in options) chosen.delete_policy = deletePolicy.value;
      for (const key of ["move_policy", "push", "max_connections"]) if (key in options) chosen[key] = options[key];
    } else {
      const mode = retention.querySelector("input[name=retention]:checked")?.value ?? "keep";
      if (mode !== "keep") chosen.retention = mode;
      if (mode === "delete_after_days") chosen.retention_days = Number(retention.querySelector("input[name=retention_days]").value);
    }
    for (const key of ["timeout_seconds", "tls_ca_file", "tls_fingerprint_sha256", "daily_budget_mb"]) if (key in options) chosen[key] = options[key];
    return chosen;
  };
  const body = () => ({
    name: name.value.trim(),
    protocol: protocol.value,
    host: host.value.trim(),
    port: Number(port.value),
    security: security.value,
    username: username.value,
    password: password.value,
    poll_interval: Number(interval.value),
    options: collectOptions(),
  });

  const testButton = h("button", { type: "button" }, t("action.test"));
  testButton.addEventListener("click", async () => {
    testResult.className = "result";
    testResult.textContent = t("test.running");
    try {
      const outcome = existing && !password.value
        ? await api("POST", `/api/sources/${existing.id}/test`)
        : await api("POST", "/api/sources/test", body());
      testResult.className = outcome.ok ? "result ok" : "result error";
      if (!outcome.ok) {
        testResult.textContent = t("test.failed", { step: t(`step.${outcome.failed_step}`), message: outcome.message });
      } else if (outcome.messages !== null) {
        testResult.textContent = t("test.okMessages", { n: outcome.messages });
      } else {
        testResult.textContent = outcome.folders.length ? t("test.okFolders", { folders: outcome.folders.join(", ") }) : t("test.ok");
      }
    } catch (error) {
      testResult.className = "result error";
      testResult.textContent = describeError(error);
    }
  });

  const form = h("form", { class: "card", "aria-labelledby": "form-title" },
    h("h2", { id: "form-title" }, existing ? t("form.editTitle", { name: existing.name }) : t("form.addTitle")),
    existing ? null : h("div", { class: "suggest" }, addressField, suggestButton, suggestResult),
    h("div", { class: "columns" }, nameField, protocolField, hostField, securityField, portField, plainField,
      userField, passwordField, intervalField, foldersField, deleteField),
    retention,
    h("div", { class: "actions" }, testButton, h("button", { type: "submit", class: "primary" }, t("action.save")),
      h("a", { class: "button", href: "#/" }, t("action.cancel"))),
    testResult, saveError);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    saveError.textContent = "";
    try {
      if (existing) {
        const changes = { ...body() };
        delete changes.name;
        delete changes.protocol;
        if (!changes.password) delete changes.password;
        await api("PATCH", `/api/sources/${existing.id}`, changes);
      } else {
        await api("POST", "/api/sources", body());
      }
      location.hash = "#/";
    } catch (error) {
      saveError.textContent = describeError(error);
    }
  });
  main.replaceChildren(form);
  (existing ? host : address).focus();
  if (!existing) addConnectCard(main, form);
}
