// OAuth2 accounts (Gmail, Microsoft, another provider): "Connect with …" on the add page,
// "Reconnect" on a source whose grant was revoked, and the outcome after the provider's
// redirect back (#/oauth2?connected=NAME or #/oauth2?error=TEXT).
import { api, describeError } from "./api.js";
import { announce, reportError } from "./feedback.js";
import { h } from "./dom.js";
import { addText, t } from "./i18n.js";

addText("en", {
  "oauth2.title": "Sign in with your provider",
  "oauth2.help": "For Gmail and Microsoft accounts, which no longer take passwords: you sign in at the provider and allow the gateway to read and send your mail. No password is stored.",
  "oauth2.connect": "Connect with {provider}",
  "oauth2.protocol": "Fetch by",
  "oauth2.reconnect": "Reconnect",
  "oauth2.connected": "Account connected as source {name}.",
  "oauth2.failed": "Connecting failed: {message}",
  "oauth2.or": "Or enter the server settings yourself:",
  "state.reconnect_needed": "Access revoked or expired: reconnect the account",
});
addText("ja", {
  "oauth2.title": "プロバイダーでサインイン",
  "oauth2.help": "パスワードを使えなくなった Gmail や Microsoft のアカウント向けです。プロバイダーでサインインし、メールの読み取りと送信を許可します。パスワードは保存されません。",
  "oauth2.connect": "{provider} で接続",
  "oauth2.protocol": "取得方法",
  "oauth2.reconnect": "再接続",
  "oauth2.connected": "アカウントを取得元 {name} として接続しました。",
  "oauth2.failed": "接続できませんでした: {message}",
  "oauth2.or": "または、サーバー設定を自分で入力してください:",
  "state.reconnect_needed": "アクセスが取り消されたか期限切れです。アカウントを再接続してください",
});

async function startConnect(body) {
  const started = await api("POST", "/api/oauth2/connect", body);
  location.assign(started.authorization_url);
}

// Put the "Connect with …" card before `form` when the operator configured a provider.
export async function addConnectCard(main, form) {
  let providers = [];
  try {
    providers = await api("GET", "/api/oauth2/providers");
  } catch (error) {
    reportError(error);
    return;
  }
  if (!providers.length || !form.isConnected) return;
  const error = h("p", { class: "error", role: "alert" });
  const buttons = providers.map((provider) => {
    const protocol = h("select", { "aria-label": `${t("oauth2.protocol")} (${provider.title})` },
      provider.protocols.map((p) => h("option", { value: p }, p.toUpperCase())));
    const button = h("button", {
      type: "button", "data-provider": provider.name, onclick: async () => {
        error.textContent = "";
        try {
          await startConnect({ provider: provider.name, protocol: protocol.value });
        } catch (failure) {
          error.textContent = describeError(failure);
        }
      },
    }, t("oauth2.connect", { provider: provider.title }));
    return h("div", { class: "actions" }, button, provider.protocols.length > 1 ? protocol : null);
  });
  const card = h("section", { class: "card", "aria-labelledby": "oauth2-title" },
    h("h2", { id: "oauth2-title" }, t("oauth2.title")), h("p", { class: "muted" }, t("oauth2.help")),
    buttons, error, h("p", {}, t("oauth2.or")));
  main.insertBefore(card, form);
}

export function reconnectButton(source) {
  return h("button", {
    type: "button", onclick: () => startConnect({ provider: source.oauth_provider, source_id: source.id }).catch(reportError),
  }, t("oauth2.reconnect"));
}

// After the provider's redirect: say what happened (the dashboard shows below).
export function announceOutcome(path) {
  const query = new URLSearchParams(path.split("?")[1] || "");
  if (query.has("connected")) announce(t("oauth2.connected", { name: query.get("connected") }));
  else if (query.has("error")) announce(t("oauth2.failed", { message: query.get("error") }));
}
