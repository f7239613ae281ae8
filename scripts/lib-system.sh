# Helpers sourced by the scripts: Debian packages and the local PostgreSQL the tests use.

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
    missing=""
    for package in "$@"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing="$missing $package"
    done
    if [ -n "$missing" ]; then
        echo "installing Debian packages:$missing"
        as_root apt-get update -qq
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq $missing
    fi
}

postgres_answers() {
    python3 -c 'import socket; socket.create_connection(("127.0.0.1", 5432), 2).close()' 2>/dev/null
}

# The store tests need PostgreSQL at 127.0.0.1:5432 with trust auth for user postgres.
ensure_postgres() {
    if postgres_answers; then return 0; fi
    command -v pg_ctlcluster >/dev/null || apt_install postgresql
    version="$(ls /etc/postgresql | sort -n | tail -1)"
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    if ! grep -q "^host all all 127.0.0.1/32 trust" "$hba"; then
        echo "configuring trust auth on 127.0.0.1 for the test PostgreSQL"
        as_root sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
    fi
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do postgres_answers && return 0; sleep 1; done
    echo "error: PostgreSQL does not answer at 127.0.0.1:5432" >&2
    exit 1
}

# The OAuth2 tests run oidc-provider 8.8.1, which supports Node.js 18-22 (Debian 12 has 18).
ensure_node() {
    if command -v node >/dev/null && command -v npm >/dev/null; then return 0; fi
    apt_install nodejs npm
}
