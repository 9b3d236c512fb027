"""Every error leaves the server as JSON: ``{"error": code, "message": sentence, ...details}``."""

from __future__ import annotations

import logging
import re

from sanic import HTTPResponse, Request
from sanic.exceptions import MethodNotAllowed, RequestCancelled, SanicException
from sanic.handlers import ErrorHandler
from sanic.response import json

from hookline.errors import HooklineError

log = logging.getLogger("hookline.web")


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None, **details: object) -> HTTPResponse:
    """The one shape of an error answer."""
    return json({"error": code, "message": message, **details}, status=status, headers=headers)


class JSONErrorHandler(ErrorHandler):
    """Turns Hookline errors, Sanic's own (404, 405, 413, ...) and anything unexpected into JSON.
    Unexpected errors are logged with their traceback and answered with a generic 500."""

    def default(self, request: Request, exception: BaseException) -> HTTPResponse:
        if isinstance(exception, RequestCancelled):
            # The client went away mid-request (a load tool stopping, a sender timing out);
            # the work it started goes on. Nothing to log, and nobody to answer.
            return error_response(499, "request_cancelled", "the client closed the connection")
        if isinstance(exception, HooklineError):
            return json(exception.to_dict(), status=exception.status)
        if isinstance(exception, SanicException):
            status = exception.status_code
            headers = dict(getattr(exception, "headers", None) or {})
            if isinstance(exception, MethodNotAllowed) and exception.allowed_methods:
                headers.setdefault("Allow", ", ".join(sorted(exception.allowed_methods)))
            message = str(exception) or exception.message or "request failed"
            if status == 404 and request is not None:
                message = f"no route for {request.method} {request.path}"
            if status >= 500:
                self.log(request, exception)
            return error_response(status, _code(type(exception).__name__, status), message, headers=headers)
        log.error("unexpected error on %s %s", getattr(request, "method", "?"), getattr(request, "path", "?"), exc_info=exception)
        return error_response(500, "internal_error", "internal server error; the server log has the details")


def _code(class_name: str, status: int) -> str:
    """``MethodNotAllowed`` -> ``method_not_allowed``."""
    if class_name in ("SanicException", "HTTPException"):
        return {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(status, f"http_{status}")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", class_name).lower()
