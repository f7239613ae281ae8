// Users (administrators only): add, delete, reset a password (which ends the user's sessions
// and revokes their API tokens) and grant or take away administration. The server keeps the
// last administrator; the page says so in the reader's language.
import { api, ApiError, describeError } from "./api.js";
import { h, field } from "./dom.js";
import { announce, reportError } from "./feedback.js";
import { t } from "./i18n.js";
import "./sending_text.js";

function resetForm(user, done) {
  const [passwordField, password] = field(t("users.newPassword", { name: user.name }),
    { name: "password", type: "password", required: true, autocomplete: "new-password" }, t("users.resetHelp"));
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "inline" }, passwordField,
    h("button", { type: "submit", class: "primary" }, t("action.save")),
    h("button", { type: "button", onclick: () => done(false) }, t("action.cancel")), error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("PATCH", `/api/users/${user.id}`, { password: password.value });
      password.value = "";
      announce(t("users.resetDone", { name: user.name }));
      done(true);
    } catch (failure) {
      password.value = "";
      error.textContent = describeError(failure);
    }
  });
  return [form, password];
}

export function showUsers(main, me) {
  const list = h("ul", { class: "plain" });
  const error = h("p", { class: "error", role: "alert" });
  const setAdmin = async (user, isAdmin) => {
    error.textContent = "";
    try {
      await api("PATCH", `/api/users/${user.id}`, { is_admin: isAdmin });
      announce(t(isAdmin ? "users.adminOn" : "users.adminOff", { name: user.name }));
      if (user.id === me.id && !isAdmin) window.location.reload();
      else refresh();
    } catch (failure) {
      error.textContent = failure instanceof ApiError && failure.status === 409
        ? t("users.lastAdmin", { name: user.name }) : describeError(failure);
    }
  };
  const remove = async (user) => {
    if (!window.confirm(t("users.confirmDelete", { name: user.name }))) return;
    try {
      await api("DELETE", `/api/users/${user.id}`);
      refresh();
    } catch (failure) {
      reportError(failure);
    }
  };
  const item = (user) => {
    const slot = h("div");
    const reset = h("button", { type: "button", "aria-label": `${t("users.reset")}: ${user.name}` }, t("users.reset"));
    reset.addEventListener("click", () => {
      const [form, input] = resetForm(user, () => { slot.replaceChildren(); reset.focus(); });
      slot.replaceChildren(form);
      input.focus();
    });
    const toggle = h("button", {
      type: "button", "aria-label": `${t(user.is_admin ? "users.removeAdmin" : "users.makeAdmin")}: ${user.name}`,
      onclick: () => setAdmin(user, !user.is_admin),
    }, t(user.is_admin ? "users.removeAdmin" : "users.makeAdmin"));
    return h("li", { "data-user": user.name },
      h("strong", {}, user.name), user.is_admin ? ` (${t("users.admin")})` : "",
      user.id === me.id ? ` · ${t("users.you")}` : "",
      h("div", { class: "actions" }, reset, toggle, user.id === me.id ? null : h("button", {
        type: "button", class: "danger", "aria-label": `${t("action.delete")}: ${user.name}`, onclick: () => remove(user),
      }, t("action.delete"))), slot);
  };
  async function refresh() {
    try {
      const users = await api("GET", "/api/users");
      list.replaceChildren(...(users.length ? users.map(item) : [h("li", { class: "muted" }, t("users.none"))]));
    } catch (failure) {
      reportError(failure);
    }
  }
  const [nameField, name] = field(t("users.name"), { name: "name", required: true, autocomplete: "off" });
  const [passwordField, password] = field(t("users.password"), { name: "password", type: "password", required: true, autocomplete: "new-password" });
  const adminBox = h("input", { type: "checkbox", id: "new-user-admin", name: "is_admin" });
  const addError = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "inline", "aria-labelledby": "user-add-title" }, nameField, passwordField,
    h("div", { class: "field check" }, adminBox, h("label", { for: "new-user-admin" }, t("users.admin"))),
    h("button", { type: "submit" }, t("action.add")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    addError.textContent = "";
    try {
      await api("POST", "/api/users", { name: name.value, password: password.value, is_admin: adminBox.checked });
      form.reset();
      refresh();
    } catch (failure) {
      password.value = "";
      addError.textContent = describeError(failure);
    }
  });
  main.replaceChildren(h("section", { class: "card", "aria-labelledby": "page-title" },
    h("h2", { id: "page-title" }, t("users.title")), list, error,
    h("h3", { id: "user-add-title" }, t("users.addTitle")), form, addError));
  refresh();
}
