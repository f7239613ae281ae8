"""The OAuth2/OpenID authorization server of the tests: `oidc-provider` (npm) under Node.js.

`tests/peers/oidc/op.mjs` is the server; its packages come from `npm ci` in that directory
(scripts/test.sh does it). Clients: `gateway` / `gateway-secret` (the gateway, code flow with
PKCE and refresh tokens) and `dovecot` / `dovecot-secret` (introspection only, used by the mail
peers). Access tokens carry the scope `mail` and the account's address as `email`.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import httpx

from tests.support.dovecot import free_port

PEER_DIR = Path(__file__).resolve().parent.parent / "peers" / "oidc"
GATEWAY_CLIENT = ("gateway", "gateway-secret")
INTROSPECTION_CLIENT = ("dovecot", "dovecot-secret")
START_TIMEOUT = 20.0


class OidcProviderError(RuntimeError):
    """Node.js or the npm packages are missing, or the server did not start."""


class OidcProvider:
    """A running `op.mjs` on a free 127.0.0.1 port; use as a context manager."""

    def __init__(
        self,
        *,
        access_token_ttl: int = 60,
        token_format: str = "opaque",  # noqa: S107 - a format name
        rotate_refresh_tokens: bool = True,
        interactive: bool = False,
    ) -> None:
        node = shutil.which("node")
        if node is None:
            raise OidcProviderError("node (Node.js 20) not found; install the Debian nodejs")
        if not (PEER_DIR / "node_modules" / "oidc-provider").is_dir():
            raise OidcProviderError(f"oidc-provider not installed: run `npm ci` in {PEER_DIR}")
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self._dir = Path(tempfile.mkdtemp(prefix="gw-oidc-"))
        self._dir.chmod(0o755)
        self.public_key_path = self._dir / "op-pub.pem"
        self.log_path = self._dir / "op.log"
        self._command = [node, str(PEER_DIR / "op.mjs")]
        self._env = {
            **os.environ,
            "OP_PORT": str(self.port),
            "OP_AT_TTL": str(access_token_ttl),
            "OP_AT_FORMAT": token_format,
            "OP_ROTATE_RT": "1" if rotate_refresh_tokens else "0",
            "OP_INTERACTIVE": "1" if interactive else "0",
            "OP_PUBKEY_PEM": str(self.public_key_path),
        }
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> OidcProvider:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                self._command, cwd=PEER_DIR, env=self._env, stdout=log, stderr=log
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise OidcProviderError(f"oidc-provider exited: {self.log_text()}")
            try:
                httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=1.0)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise OidcProviderError(f"oidc-provider did not answer: {self.log_text()}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            self._process.wait(timeout=10)
        self._process = None
        shutil.rmtree(self._dir, ignore_errors=True)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # -- what a client does, for tests that need tokens without the gateway ------------

    def authorize(self, redirect_uri: str, *, login_hint: str | None = None) -> dict[str, str]:
        """Run the code flow with PKCE through the auto-approving interaction; tokens back."""
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        params = {
            "response_type": "code",
            "client_id": GATEWAY_CLIENT[0],
            "redirect_uri": redirect_uri,
            "scope": "openid mail offline_access",
            "state": "s",
            "prompt": "consent",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if login_hint:
            params["login_hint"] = login_hint
        redirect = self.follow(f"{self.issuer}/auth?{urlencode(params)}", redirect_uri)
        code = dict(parse_qsl(urlsplit(redirect).query))["code"]
        return self.token_request(
            grant_type="authorization_code",
            code=code,
            redirect_uri=redirect_uri,
            code_verifier=verifier,
        )

    def follow(self, url: str, redirect_uri: str) -> str:
        """Follow an authorization URL through the auto-approving login and consent (with
        cookies, which oidc-provider needs) to the redirect back to the client: its URL."""
        with httpx.Client(follow_redirects=False, timeout=10) as client:
            for _ in range(10):
                response = client.get(url)
                if response.status_code not in (302, 303):
                    raise OidcProviderError(f"{url}: {response.status_code} {response.text[:300]}")
                url = urljoin(url, response.headers["location"])
                if url.startswith(redirect_uri):
                    return url
        raise OidcProviderError("too many redirects")

    def token_request(self, **form: str) -> dict[str, str]:
        response = httpx.post(f"{self.issuer}/token", data=form, auth=GATEWAY_CLIENT, timeout=10)
        response.raise_for_status()
        result: dict[str, str] = response.json()
        return result

    def revoke(self, token: str, *, hint: str = "refresh_token") -> None:
        """Revoke a token; for a refresh token oidc-provider drops its whole grant."""
        response = httpx.post(
            f"{self.issuer}/token/revocation",
            data={"token": token, "token_type_hint": hint},
            auth=GATEWAY_CLIENT,
            timeout=10,
        )
        response.raise_for_status()

    def introspect(self, token: str) -> dict[str, object]:
        response = httpx.post(
            f"{self.issuer}/token/introspection",
            data={
                "token": token,
                "client_id": INTROSPECTION_CLIENT[0],
                "client_secret": INTROSPECTION_CLIENT[1],
            },
            timeout=10,
        )
        response.raise_for_status()
        result: dict[str, object] = response.json()
        return result

    def dovecot_passdb(self, config_path: Path) -> str:
        """A Dovecot oauth2 passdb block checking this server's tokens by introspection."""
        config_path.write_text(
            "introspection_mode = post\n"
            f"introspection_url = {self.issuer}/token/introspection\n"
            f"client_id = {INTROSPECTION_CLIENT[0]}\n"
            f"client_secret = {INTROSPECTION_CLIENT[1]}\n"
            "username_attribute = email\n"
            "active_attribute = active\n"
            "active_value = true\n"
            "scope = mail\n"
        )
        config_path.chmod(0o644)
        return (
            "passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
            f"  args = {config_path}\n}}\n"
        )
