// The admin panel: log in, then hash routes (#/, #/add, #/edit/ID, #/identities, #/queue,
// #/tokens, #/users). The dashboard refreshes itself every few seconds without reloading the page.
import { api, ApiError, describeError, setCsrfToken } from "./api.js";
import { h, field } from "./dom.js";
import { chooseLanguage, setLanguage, t } from "./i18n.js";
import { showDashboard } from "./dashboard.js";
import { showSourceForm } from "./source_form.js";
import { showTokens } from "./pages.js";
import { showIdentities } from "./identities.js";
import { showQueue } from "./queue.js";
import { showUsers } from "./users.js";

const main = document.getElementById("main");
let session = null;

function showLogin(message = "") {
  session = null;
  document.getElementById("nav").hidden = true;
  document.getElementById("logout").hidden = true;
  const [userField, user] = field(t("login.user"), { name: "username", autocomplete: "username", required: true });
  const [passwordField, password] = field(t("login.password"), {
    name: "password", type: "password", autocomplete: "current-password", required: true,
  });
  const error = h("p", { class: "error", role: "alert" }, message);
  const form = h("form", { class: "card narrow", "aria-labelledby": "login-title" },
    h("h2", { id: "login-title" }, t("login.title")), userField, passwordField, error,
    h("button", { type: "submit" }, t("login.submit")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const result = await api("POST", "/api/login", { username: user.value, password: password.value });
      startSession(result);
    } catch (failure) {
      password.value = "";
      if (failure instanceof ApiError && failure.status === 429) {
        error.textContent = t("login.throttled", { s: failure.headers.get("Retry-After") || "?" });
      } else if (failure instanceof ApiError && failure.status === 401) {
        error.textContent = t("login.failed");
      } else {
        error.textContent = describeError(failure);
      }
    }
  });
  main.replaceChildren(form);
  user.focus();
}

function startSession(result) {
  session = result;
  setCsrfToken(result.csrf_token);
  document.getElementById("nav").hidden = false;
  document.getElementById("logout").hidden = false;
  document.getElementById("nav-users").hidden = !result.user.is_admin;
  route();
}

let leaveView = () => {};

function route() {
  if (!session) return;
  leaveView();
  leaveView = () => {};
  const path = location.hash.replace(/^#/, "") || "/";
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.getAttribute("href") === `#${path}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const edit = path.match(/^\/edit\/(\d+)$/);
  if (path === "/add") showSourceForm(main, null);
  else if (edit) showSourceForm(main, Number(edit[1]));
  else if (path === "/identities") showIdentities(main);
  else if (path === "/tokens") showTokens(main);
  else if (path === "/queue") leaveView = showQueue(main, session.user.is_admin);
  else if (path === "/users" && session.user.is_admin) showUsers(main, session.user);
  else leaveView = showDashboard(main);
}

async function start() {
  const lang = document.getElementById("lang");
  setLanguage(chooseLanguage());
  lang.value = document.documentElement.lang;
  lang.addEventListener("change", () => {
    setLanguage(lang.value, true);
    if (session) route();
    else showLogin();
  });
  document.getElementById("logout").addEventListener("click", async () => {
    await api("POST", "/api/logout").catch(() => null);
    showLogin();
  });
  window.addEventListener("hashchange", route);
  window.addEventListener("session-expired", () => showLogin());
  try {
    startSession(await api("GET", "/api/session"));
  } catch {
    showLogin();
  }
}

start();
