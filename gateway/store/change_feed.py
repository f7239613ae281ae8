"""Cross-process change notices on PostgreSQL: NOTIFY in each write, LISTEN in each server.

Every transaction that bumps a mailbox's MODSEQ also queues `pg_notify`, which PostgreSQL
delivers only if and when that transaction commits. A gateway replica listening on the channel
then wakes its IDLE sessions within milliseconds of a commit made by another replica or by a
`gateway sync` process, instead of waiting for the next poll.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from gateway.store.base import StoreBase
from gateway.store.notices import CHANNEL

log = logging.getLogger("gateway.store")


class ChangeFeedOperations(StoreBase):
    @property
    def supports_change_feed(self) -> bool:
        return not self.database.is_sqlite

    def listen_for_changes(
        self,
        *,
        on_change: Callable[[int, int], None],
        stop: threading.Event,
        listening: threading.Event | None = None,
    ) -> None:
        """Call `on_change(mailbox_id, modseq)` for every committed change until `stop` is set.

        Blocking: run it in a thread. Reconnects after a lost connection. `listening` is set
        once LISTEN is in place: from then on no commit goes unheard.
        """
        import psycopg  # late: only PostgreSQL servers listen, and it costs CLI start-up

        url = self.database.engine.url.set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        while not stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    if listening is not None:
                        listening.set()
                    while not stop.is_set():
                        for notice in conn.notifies(timeout=1.0):
                            mailbox_id, _, modseq = notice.payload.partition(":")
                            on_change(int(mailbox_id), int(modseq))
            except (psycopg.Error, ValueError) as error:
                log.warning("event=change_feed_lost error=%r", error)
                stop.wait(1.0)
