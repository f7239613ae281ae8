"""Run one POP3 or IMAP sync in a fresh process and print its peak RSS growth (VmHWM) as JSON.

Usage: python -m tests.fetch.rss_probe  (store from GATEWAY_DATA_DIR / GATEWAY_SECRET_KEY)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from gateway.fetch import sync_pop3_source
from gateway.fetch.imap_source import sync_imap_source
from gateway.settings import Settings
from gateway.store import open_store


def _hwm_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def _reset_hwm() -> None:
    # Writing 5 to clear_refs resets the peak RSS counter (Linux >= 4.0).
    Path("/proc/self/clear_refs").write_text("5")


def main() -> None:
    settings = Settings(
        data_dir=Path(os.environ["GATEWAY_DATA_DIR"]),
        secret_key=os.environ["GATEWAY_SECRET_KEY"],
        ingest_workers=0,
        _env_file=None,  # type: ignore[call-arg]
    )
    store = open_store(settings)
    source = store.get_source(user_name="alice", name="isp")
    store.known_uidls(source_id=source.id)  # warm up the connection pool and ORM
    _reset_hwm()
    before = _hwm_kib()
    if source.protocol == "imap":
        synced_bytes = sync_imap_source(store, source).bytes
    else:
        synced_bytes = sync_pop3_source(store, source).bytes
    after = _hwm_kib()
    store.close()
    print(json.dumps({"before_kib": before, "after_kib": after, "bytes": synced_bytes}))


if __name__ == "__main__":
    main()
