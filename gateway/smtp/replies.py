"""Every reply the submission server composes itself, with its RFC 3463 enhanced code.

aiosmtpd's own replies get their enhanced code added in `protocol.py`.
"""

from __future__ import annotations

OK = "250 2.0.0 OK"
SENDER_OK = "250 2.1.0 Sender OK"
RECIPIENT_OK = "250 2.1.5 Recipient OK"
AUTH_SUCCESS = "235 2.7.0 Authentication successful"
AUTH_INVALID = "535 5.7.8 Authentication credentials invalid"
# RFC 4954 §6: 454 4.7.0, temporary authentication failure.
AUTH_THROTTLED = "454 4.7.0 Too many failed logins, try again in {seconds} seconds"
AUTH_MALFORMED = "501 5.5.2 Cannot decode the authentication data"
# RFC 6409 §6.1: the submission server may refuse a sender the user does not own.
SENDER_NOT_OWNED = "553 5.7.1 Sender address is not one of your identities"
FROM_NOT_OWNED = "550 5.7.1 From: must be one of your identities"
FROM_MISSING = "550 5.6.0 Message has no From: header"
# Source routes (RFC 5321 §4.1.1.3, C.) and %/! hops: the classic open-relay tricks.
ROUTING_REFUSED = "553 5.1.3 Routed or relayed address forms are not accepted"
BAD_RECIPIENT = "553 5.1.3 Recipient address is not a plain user@domain"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
IDENTITY_GONE = "451 4.3.0 Sender identity changed; try again"
QUEUED = "250 2.0.0 Queued as {queue_id}"
QUEUE_FAILED = "451 4.3.0 Could not queue the message; try again later"
TOO_LARGE = "552 5.3.4 Message too big"
# RFC 5321 §3.8 lets a server refuse a session with 421 and close it; 4.7.0: policy.
TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections from your address"
