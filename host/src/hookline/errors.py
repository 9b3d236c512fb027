"""Error classes. Each carries what a person needs to fix the problem; the HTTP layer turns them
into ``{"error": code, "message": ..., ...details}`` with the class's status code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class HooklineError(Exception):
    """Base class. ``code`` is the machine-readable ``error`` field, ``status`` the HTTP status."""

    code = "hookline_error"
    status = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.details}


class PluginError(HooklineError):
    """A plugin is broken or conflicts with another one; the host refuses to start."""

    code = "plugin_error"


class ConfigurationError(HooklineError):
    """A setting (database URL, ...) cannot work as given."""

    code = "configuration_error"


class NodeError(HooklineError):
    """Raised by a node type's ``execute`` for a failure the user should see.

    The engine records ``message`` (and ``details``) on the job and ends the execution
    ``failed``. Anything else a node raises is treated as a bug in the node: the execution
    ends ``error`` and the traceback goes to the server log only.
    """

    code = "node_error"
    status = 422


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a definition, at a location such as ``nodes[0].config.status``."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message

    def to_dict(self) -> dict[str, str]:
        return {"location": self.location, "message": self.message}


def problems_text(problems: list[Problem], most: int = 3) -> str:
    """``location: message`` of the first ``most`` problems, and how many more there are."""
    text = "; ".join(str(p) for p in problems[:most])
    return text + (f" (and {len(problems) - most} more)" if len(problems) > most else "")


class DefinitionError(HooklineError):
    """A workflow definition is invalid; ``problems`` lists every problem found."""

    code = "invalid_definition"
    status = 422

    def __init__(self, problems: list[Problem], *, subject: str = "workflow definition") -> None:
        self.problems = problems
        super().__init__(
            f"{subject} is invalid: {problems_text(problems, most=5)}",
            problems=[p.to_dict() for p in problems],
        )


class WorkflowUnavailable(DefinitionError):
    """A stored workflow cannot run on this server: a plugin it needs is missing or disabled, or
    one of its types could not be prepared. Raised by ``host.workflows.find``, which has logged
    the reason for the operator (at most once a minute per workflow).

    ``message`` and ``problems`` are for the operator. A trigger answers its caller, who is
    outside, with :meth:`to_dict` (``503``): ``public_message``, which names no plugin or type.
    """

    code = "workflow_unavailable"
    status = 503

    def __init__(self, key: str, problems: list[Problem]) -> None:
        self.key = key
        self.problems = problems
        HooklineError.__init__(self, f"workflow {key!r} cannot run on this server: {problems_text(problems)}")
        self.public_message = f"workflow {key!r} cannot run on this server now; its operator has been told"

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.public_message}


class TemplateError(HooklineError):
    """A ``{{ }}`` template could not be compiled. ``path`` locates it inside the value."""

    code = "invalid_template"
    status = 422

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.path: list[str | int] = []


class NotFound(HooklineError):
    """What was asked for does not exist (a workflow key, an execution id): a 404."""

    code = "not_found"
    status = 404


class BadRequest(HooklineError):
    """The request is malformed or asks for something impossible: a 400."""

    code = "bad_request"
    status = 400


class InvalidBody(BadRequest):
    """The request body does not parse as the format it claims (JSON, YAML, ...)."""

    code = "invalid_body"


class PayloadTooLarge(HooklineError):
    """The request body is larger than the limit: a 413."""

    code = "payload_too_large"
    status = 413


class UnsupportedMediaType(HooklineError):
    """The request body's ``Content-Type`` is not one the route reads: a 415."""

    code = "unsupported_media_type"
    status = 415


class Overloaded(HooklineError):
    """Too much work is waiting in this process: the caller should retry later."""

    code = "overloaded"
    status = 503


class Conflict(HooklineError):
    """The request conflicts with the current state (a name already taken): a 409."""

    code = "conflict"
    status = 409


__all__ = [
    "BadRequest",
    "ConfigurationError",
    "Conflict",
    "DefinitionError",
    "HooklineError",
    "InvalidBody",
    "NodeError",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "PluginError",
    "Problem",
    "TemplateError",
    "UnsupportedMediaType",
    "WorkflowUnavailable",
]
