"""How a call fails: :class:`CallFailed`, which the node turns into a ``hookline.NodeError``
whose ``error`` is one of the codes below (the reference lists them)."""

from __future__ import annotations

from typing import Any

BAD_URL = "bad_url"
BAD_REQUEST = "bad_request"
MISSING_SECRET = "missing_secret"
EGRESS_REFUSED = "egress_refused"
HOST_BUSY = "host_busy"
CONNECT_FAILED = "connect_failed"
TIMEOUT = "timeout"
TOO_MANY_REDIRECTS = "too_many_redirects"
BAD_REDIRECT = "bad_redirect"
RESPONSE_TOO_LARGE = "response_too_large"
BAD_RESPONSE = "bad_response"
UPSTREAM_STATUS = "upstream_status"


class CallFailed(Exception):
    """A failure the workflow's author should see. ``retryable`` failures (the connection, a
    timeout) are tried again when ``retry.attempts`` allows; the others end the call at once."""

    def __init__(self, code: str, message: str, *, retryable: bool = False, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable
        self.details = details
