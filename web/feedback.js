// Messages to the person using the panel: a polite live region, and errors from the API.
import { ApiError, describeError } from "./api.js";
import { t } from "./i18n.js";

export function announce(text) {
  const status = document.getElementById("status");
  status.textContent = "";
  // Set on the next frame so a repeated message is announced again.
  requestAnimationFrame(() => { status.textContent = text; });
}

export function reportError(error) {
  if (error instanceof ApiError && error.status === 401) {
    window.dispatchEvent(new Event("session-expired"));
    return;
  }
  announce(t("error.generic", { message: describeError(error) }));
}
