"""SMTP submission (RFC 6409) in, relay out through each identity's own provider.

`server.SmtpService` is what `gateway serve` starts: the listeners (`submission.py` on
aiosmtpd, via `protocol.py`), the group-committing intake (`intake.py`) and the relay worker
(`worker.py`). Message rewriting, bounces and replies are sans-IO (`headers.py`,
`bounce.py`, `replies.py`).
"""
