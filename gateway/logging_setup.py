"""Structured logging: one event per line, key=value, never secrets or message bodies."""

from __future__ import annotations

import logging
import sys


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
        force=True,
    )
    # aiosmtpd logs each connection and command at INFO, free-form, and a deprecation
    # warning at every AUTH; gateway.smtp logs the events that matter, key=value.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    if logging.getLogger().level > logging.DEBUG:
        # Alembic announces its dialect on every start ("Context impl SQLiteImpl."): noise
        # for an operator; the store logs `event=schema_upgrade` when it migrates.
        logging.getLogger("alembic").setLevel(logging.WARNING)
