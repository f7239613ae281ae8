// UI text in English and Japanese; the browser's language picks one, the menu switches.
const TEXT = {
  en: {
    skip: "Skip to content", title: "Mail gateway", language: "Language", logout: "Log out",
    "nav.sources": "Sources", "nav.add": "Add source", "nav.identities": "Identities",
    "nav.tokens": "API tokens", "nav.users": "Users",
    "login.title": "Log in", "login.user": "User name", "login.password": "Password",
    "login.submit": "Log in", "login.failed": "Wrong user name or password.",
    "login.throttled": "Too many attempts. Wait {s} seconds and try again.",
    "sources.title": "Sources", "sources.none": "No sources yet. Add the first account.",
    "state.ok": "OK", "state.failing": "Failing", "state.never_synced": "Not synced yet",
    "state.disabled": "Disabled", syncing: "Syncing…",
    "state.credentials_rejected": "Password rejected: edit the source to set a new one",
    "status.messages": "Messages fetched", "status.lastSuccess": "Last success",
    "status.nextRun": "Next run", "status.budget": "Today's download", "status.error": "Last error",
    "status.folders": "Folders", never: "never", "chart.label": "Last 24 hours: messages fetched (bars) and sync time (line)",
    "chart.empty": "No syncs in the last 24 hours.",
    "action.sync": "Sync now", "action.test": "Test", "action.edit": "Edit", "action.delete": "Delete",
    "action.save": "Save", "action.cancel": "Cancel", "action.add": "Add", "action.revoke": "Revoke",
    "confirm.delete": "Delete source {name}? Mail already fetched stays.",
    "sync.requested": "Sync of {name} requested.",
    "form.addTitle": "Add a source", "form.editTitle": "Edit {name}",
    "form.address": "Email address", "form.suggest": "Suggest settings",
    "form.suggestHelp": "Fills in the server settings for this address when they can be found.",
    "form.suggested": "Settings found ({origin}). Check them, then test.",
    "form.notFound": "No settings found for this domain. Ask your provider for the server names.",
    "form.name": "Name (e.g. work)", "form.protocol": "Protocol",
    "form.host": "Server", "form.port": "Port", "form.security": "Security",
    "form.username": "User name at the server", "form.password": "Password",
    "form.passwordKeep": "Password (leave empty to keep it)",
    "form.interval": "Check every (seconds)", "form.plaintext": "Allow sending the password unencrypted (testing only)",
    "form.folders": "Folders to fetch (comma separated, empty: all)",
    "security.tls": "TLS (recommended)", "security.starttls": "STARTTLS", "security.none": "None (unencrypted)",
    "retention.legend": "After downloading, mail on the server is…",
    "retention.keep": "Kept on the server", "retention.keepHelp": "Safest: your phone and webmail still see everything. The gateway remembers what it fetched.",
    "retention.after_download": "Deleted right after downloading", "retention.after_downloadHelp": "The server stays empty. Other devices reading this account will no longer see the mail.",
    "retention.after_days": "Deleted after some days", "retention.after_daysHelp": "A middle way: mail stays on the server for the number of days you choose.",
    "retention.days": "Days",
    "delete.label": "When you delete a message here, at the server it is…",
    "delete.trash": "Moved to the server's Trash", "delete.trashHelp": "Recommended: the server's Trash keeps it for a while, as if you had deleted it in webmail.",
    "delete.keep": "Kept", "delete.keepHelp": "Deleting here never touches the server: the message stays there.",
    "delete.expunge": "Deleted for good", "delete.expungeHelp": "The message is removed from the server at once. Nothing can bring it back.",
    "test.ok": "Connection OK.", "test.okFolders": "Connection OK. Folders: {folders}",
    "test.okMessages": "Connection OK. {n} messages waiting on the server.",
    "test.failed": "Failed at step “{step}”: {message}", "test.running": "Testing the connection…",
    "step.dns": "DNS (server name)", "step.tcp": "connection (port)", "step.timeout": "timeout",
    "step.tls": "TLS handshake", "step.certificate": "certificate", "step.authentication": "login (user name or password)",
    "step.protocol": "protocol",
    saved: "Saved.", "error.generic": "Something went wrong: {message}",
    "tokens.title": "API tokens", "tokens.help": "For scripts: send as “Authorization: Bearer <token>”.",
    "tokens.name": "Token name", "tokens.created": "Copy this token now; it will not be shown again:",
    "tokens.none": "No tokens.", "tokens.lastUsed": "last used",
    "warning.pop3_deletes_while_read_elsewhere": "This POP3 source deletes mail from the server after downloading it: phones, webmail or IMAP clients reading the same account lose their copy.",
    "warning.no_tls": "No TLS: the password and mail cross the network readable.",
    "warning.same_account_twice": "The same account is added twice: its mail is fetched by both sources.",
    "warning.failing_over_a_day": "This source has been failing for more than a day.",
    "warning.budget_nearly_used": "Today's download budget is nearly used; fetching pauses until midnight UTC when it is spent.",
  },
  ja: {
    skip: "本文へ移動", title: "メールゲートウェイ", language: "言語", logout: "ログアウト",
    "nav.sources": "取得元", "nav.add": "取得元を追加", "nav.identities": "送信アドレス",
    "nav.tokens": "APIトークン", "nav.users": "ユーザー",
    "login.title": "ログイン", "login.user": "ユーザー名", "login.password": "パスワード",
    "login.submit": "ログイン", "login.failed": "ユーザー名またはパスワードが違います。",
    "login.throttled": "試行回数が多すぎます。{s}秒待ってからやり直してください。",
    "sources.title": "取得元", "sources.none": "取得元はまだありません。最初のアカウントを追加してください。",
    "state.ok": "正常", "state.failing": "エラー", "state.never_synced": "未同期",
    "state.disabled": "無効", syncing: "同期中…",
    "state.credentials_rejected": "パスワードが拒否されました。取得元を編集して新しいパスワードを設定してください",
    "status.messages": "取得したメール", "status.lastSuccess": "最後の成功",
    "status.nextRun": "次回", "status.budget": "本日のダウンロード", "status.error": "最後のエラー",
    "status.folders": "フォルダー", never: "なし", "chart.label": "過去24時間：取得件数（棒）と同期時間（線）",
    "chart.empty": "過去24時間に同期はありません。",
    "action.sync": "今すぐ同期", "action.test": "テスト", "action.edit": "編集", "action.delete": "削除",
    "action.save": "保存", "action.cancel": "キャンセル", "action.add": "追加", "action.revoke": "無効にする",
    "confirm.delete": "取得元 {name} を削除しますか？取得済みのメールは残ります。",
    "sync.requested": "{name} の同期を依頼しました。",
    "form.addTitle": "取得元を追加", "form.editTitle": "{name} を編集",
    "form.address": "メールアドレス", "form.suggest": "設定を提案",
    "form.suggestHelp": "このアドレスのサーバー設定が見つかれば入力します。",
    "form.suggested": "設定が見つかりました（{origin}）。確認してからテストしてください。",
    "form.notFound": "このドメインの設定は見つかりませんでした。プロバイダーにサーバー名を確認してください。",
    "form.name": "名前（例：仕事）", "form.protocol": "プロトコル",
    "form.host": "サーバー", "form.port": "ポート", "form.security": "暗号化",
    "form.username": "サーバーのユーザー名", "form.password": "パスワード",
    "form.passwordKeep": "パスワード（空欄なら変更しません）",
    "form.interval": "確認間隔（秒）", "form.plaintext": "暗号化せずにパスワードを送ることを許可（テスト用）",
    "form.folders": "取得するフォルダー（カンマ区切り、空欄ならすべて）",
    "security.tls": "TLS（推奨）", "security.starttls": "STARTTLS", "security.none": "なし（暗号化しない）",
    "retention.legend": "ダウンロード後、サーバーのメールは…",
    "retention.keep": "サーバーに残す", "retention.keepHelp": "最も安全です。スマートフォンやWebメールからも全て見えます。取得済みのメールは記録されます。",
    "retention.after_download": "ダウンロード後すぐに削除", "retention.after_downloadHelp": "サーバーは空になります。このアカウントを読む他の端末からはメールが見えなくなります。",
    "retention.after_days": "数日後に削除", "retention.after_daysHelp": "中間の方法です。指定した日数だけサーバーに残ります。",
    "retention.days": "日数",
    "delete.label": "ここでメールを削除すると、サーバーでは…",
    "delete.trash": "サーバーのゴミ箱へ移動", "delete.trashHelp": "推奨：Webメールで削除したときと同じように、サーバーのゴミ箱にしばらく残ります。",
    "delete.keep": "残す", "delete.keepHelp": "ここで削除してもサーバーには影響せず、メールは残ります。",
    "delete.expunge": "完全に削除", "delete.expungeHelp": "サーバーからすぐに削除されます。元に戻せません。",
    "test.ok": "接続に成功しました。", "test.okFolders": "接続に成功しました。フォルダー：{folders}",
    "test.okMessages": "接続に成功しました。サーバーに{n}通のメールがあります。",
    "test.failed": "「{step}」の段階で失敗しました：{message}", "test.running": "接続をテストしています…",
    "step.dns": "DNS（サーバー名）", "step.tcp": "接続（ポート）", "step.timeout": "タイムアウト",
    "step.tls": "TLSハンドシェイク", "step.certificate": "証明書", "step.authentication": "ログイン（ユーザー名またはパスワード）",
    "step.protocol": "プロトコル",
    saved: "保存しました。", "error.generic": "エラーが発生しました：{message}",
    "tokens.title": "APIトークン", "tokens.help": "スクリプト用：「Authorization: Bearer <トークン>」として送ります。",
    "tokens.name": "トークン名", "tokens.created": "このトークンを今コピーしてください。再表示されません：",
    "tokens.none": "トークンはありません。", "tokens.lastUsed": "最終使用",
    "warning.pop3_deletes_while_read_elsewhere": "このPOP3取得元はダウンロード後にサーバーからメールを削除します。同じアカウントを読むスマートフォン、Webメール、IMAPクライアントからはメールが消えます。",
    "warning.no_tls": "TLSなし：パスワードとメールが暗号化されずにネットワークを通ります。",
    "warning.same_account_twice": "同じアカウントが2回追加されています。メールは両方の取得元で取得されます。",
    "warning.failing_over_a_day": "この取得元は1日以上エラーが続いています。",
    "warning.budget_nearly_used": "本日のダウンロード上限にほぼ達しています。上限に達すると、UTCの午前0時まで取得を停止します。",
  },
};

const STORAGE_KEY = "gateway.lang";
let current = "en";

export function chooseLanguage() {
  const saved = localStorage.getItem(STORAGE_KEY);
  if (saved && TEXT[saved]) return saved;
  for (const tag of navigator.languages || [navigator.language || "en"]) {
    const base = tag.toLowerCase().split("-")[0];
    if (TEXT[base]) return base;
  }
  return "en";
}

export function setLanguage(lang, remember = false) {
  current = TEXT[lang] ? lang : "en";
  if (remember) localStorage.setItem(STORAGE_KEY, current);
  document.documentElement.lang = current;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  document.title = t("title");
}

// A page module brings its own strings (so modules written apart do not all edit this file).
export function addText(lang, entries) {
  Object.assign(TEXT[lang], entries);
}

export function language() {
  return current;
}

export function t(key, values = {}) {
  const text = TEXT[current][key] ?? TEXT.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}
