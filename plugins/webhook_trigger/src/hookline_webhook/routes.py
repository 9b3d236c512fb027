"""The webhook endpoints: find the workflow, check the caller, read the request into
``$context``, run the workflow, answer (see docs/reference/webhook.md for every rule)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import time
from typing import Any

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json as json_response

from hookline import (
    ActiveWorkflow,
    Dedup,
    Duplicate,
    ExecutionRecord,
    ExecutionStatus,
    Host,
    HooklineError,
    NotRecorded,
    WorkflowUnavailable,
    server_secret,
)
from hookline.errors import Overloaded
from hookline.templates import Template
from hookline.web import error_response
from hookline_webhook.answers import (
    EXECUTION_HEADER,
    RETRY_AFTER,
    add_cors,
    check_content_type,
    ended,
    not_recorded,
    redact,
    redact_all_but_plain,
    refusal,
    refuse,
    reply_of,
    reply_response,
    slack_challenge,
    unavailable,
)
from hookline_webhook.auth import MisconfiguredSecret
from hookline_webhook.capture import CAPTURE_METHODS, CaptureService
from hookline_webhook.custom_paths import split_url_path, url_addresses
from hookline_webhook.params import apply_parameters
from hookline_webhook.ratelimit import Buckets, retry_after
from hookline_webhook.request import headers_of, media_type, parse_request, read_body
from hookline_webhook.signatures import verify
from hookline_webhook.trigger import WebhookConfig, WebhookTrigger

log = logging.getLogger("hookline.webhook")

#: Sanic percent-encodes static path segments, so ``webhook:trigger`` would only match a request
#: that encodes the colon; a regex segment matches it written either way.
ROUTES = (r"/api/<_action:webhook(?::|%3[Aa])trigger>/<key>", "/api/webhooks/<key>")
STATUS_ROUTE = "/api/webhooks/<key>/executions/<execution_id:int>"
#: Custom paths (``path`` in the config) of two segments or more; one-segment ones are found
#: through the key route, after the keys.
PATH_ROUTE = "/api/webhooks/<rest:path>"
_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
#: Set on the answer to a duplicate delivery (same idempotency key): it ran nothing, and
#: X-Hookline-Execution names the first delivery's execution.
DUPLICATE_HEADER = "X-Hookline-Duplicate"
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def build_blueprint(host: Host, captures: CaptureService) -> Blueprint:
    webhooks = Webhooks(host, captures)
    bp = Blueprint("hookline_webhook")

    async def webhook(request: Request, key: str, _action: str = "") -> HTTPResponse:
        """Start the workflow KEY with the request as $context (methods per workflow; HEAD and OPTIONS answer without running)."""
        return await webhooks.handle(request, key)

    async def webhook_path(request: Request, rest: str) -> HTTPResponse:
        """Start the workflow whose custom path matches, its :parameters in $context.params."""
        return await webhooks.handle_path(request, rest)

    async def execution_status(request: Request, key: str, execution_id: int) -> HTTPResponse:
        """Status of an execution this webhook started, and its answer once there is one."""
        return await webhooks.status(request, key, execution_id)

    for number, path in enumerate(ROUTES):
        # Streamed, so that the trigger's own body size limit applies while reading.
        bp.add_route(webhook, path, methods=_ALL_METHODS, name=f"webhook_{number}", stream=True)
    bp.add_route(execution_status, STATUS_ROUTE, methods=["GET"], name="execution_status")
    bp.add_route(webhook_path, PATH_ROUTE, methods=_ALL_METHODS, name="webhook_path", stream=True)
    return bp


class Webhooks:
    def __init__(self, host: Host, captures: CaptureService) -> None:
        self.host = host
        self.captures = captures
        self.buckets = Buckets()
        self.trigger: WebhookTrigger = host.registry.triggers[WebhookTrigger.name]  # type: ignore[assignment]
        self._status_key: bytes | None = None

    async def status_key(self) -> bytes:
        """The key that signs status URLs (one per database, read once)."""
        if self._status_key is None:
            self._status_key = await server_secret("webhook-status")
        return self._status_key

    def status_token(self, key: str, execution_id: int) -> str:
        """What a status URL carries so that only who was given it can read it (execution ids
        are sequential: without it, any caller could read every answer)."""
        assert self._status_key is not None, "status_key() is awaited before any execution starts"
        digest = hmac.new(self._status_key, f"{key}/{execution_id}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()

    async def _workflow(self, key: str, request: Request | None = None) -> tuple[ActiveWorkflow, WebhookConfig] | HTTPResponse:
        """The workflow called and its config, or the answer refusing the call (reported to the
        refused calls when ``request`` is given: calls to the webhook, not to its status URL)."""
        try:
            workflow = await self.host.workflows.find(key)
        except WorkflowUnavailable as exc:  # the host logged why; the caller is told no internals
            if request is not None:
                self._report(request, key, None, (exc.status, exc.code, exc.message))
            return json_response(exc.to_dict(), status=exc.status)
        except Exception:  # the database is unreachable: nothing was recorded, the sender retries
            return not_recorded(key)
        not_ours = workflow is None or workflow.definition.trigger.type != WebhookTrigger.name
        if not_ours and request is not None:  # no webhook with this key: a one-segment custom path?
            matched = await self._match_path([key], request)
            if matched is not None:
                return matched
        if workflow is None:
            message = f"no webhook workflow with key {key!r}; check the URL (keys are case-sensitive)"
            if request is not None:
                self._report(request, None, None, (404, "not_found", message))
            return error_response(404, "not_found", message)
        if workflow.definition.trigger.type != WebhookTrigger.name:
            message = f"workflow {key!r} is triggered by {workflow.definition.trigger.type!r}, not by a webhook: it has no URL"
            if request is not None:
                self._report(request, key, None, (404, "not_found", message))
            return error_response(404, "not_found", message)
        return workflow, workflow.trigger_state

    async def _match_path(
        self, parts: list[str], request: Request
    ) -> tuple[ActiveWorkflow, WebhookConfig] | HTTPResponse | None:
        """The workflow whose custom path matches ``parts`` (the URL's segments after
        ``/api/webhooks/``), its parameters kept in ``request.ctx.path_params``; ``None`` when
        none matches. One indexed read, whatever the number of workflows."""
        try:
            candidates = await self.host.workflows.find_by_address(WebhookTrigger.name, url_addresses(parts))
        except Exception:  # the database is unreachable: nothing was recorded, the sender retries
            return not_recorded(parts[0])
        for candidate in candidates:  # (by id: at most one matches, overlaps are refused at save)
            config: WebhookConfig = candidate.trigger_state
            values = config.path.match(parts) if config.path is not None else None
            if values is not None:
                request.ctx.path_params = values
                return candidate, config
        return None

    async def handle_path(self, request: Request, rest: str) -> HTTPResponse:
        parts = split_url_path(rest)
        found = await self._match_path(parts, request) if parts else None
        if found is None:
            message = f"no webhook workflow at /api/webhooks/{rest}; check the URL (keys and paths are case-sensitive)"
            self._report(request, None, None, (404, "not_found", message))
            return error_response(404, "not_found", message)
        return await self.handle(request, "", found)

    async def handle(
        self, request: Request, key: str, found: tuple[ActiveWorkflow, WebhookConfig] | HTTPResponse | None = None
    ) -> HTTPResponse:
        if found is None:
            found = await self._workflow(key, request)
        if isinstance(found, HTTPResponse):
            return found
        workflow, config = found
        if self._status_key is None:
            try:
                await self.status_key()
            except Exception:  # the database is unreachable
                return not_recorded(key)
        try:
            response = await self._answer(request, workflow, config)
        except HooklineError as exc:
            response = json_response(exc.to_dict(), status=exc.status)
            if exc.status < 500:  # the caller's request was refused (413, 415, 400...)
                request.ctx.refusal = (exc.status, exc.code, exc.message)
        add_cors(request, config, response)
        refusal = getattr(request.ctx, "refusal", None)
        if refusal is not None:
            self._report(request, workflow.key, config, refusal)
        return response

    def _report(self, request: Request, workflow: str | None, config: WebhookConfig | None, refusal: tuple[int, str, str]) -> None:
        """Tell the host's refused calls about this one (sampled there under a flood), with its
        headers redacted as the execution history's are, and the body if it was read."""
        status, cause, message = refusal
        headers = headers_of(request)
        if config is None:
            redact_all_but_plain(headers)
        else:
            redact(headers, config)
        self.host.refused_calls.record(
            workflow=workflow,
            status=status,
            cause=cause,
            message=message,
            method=request.method,
            path=request.path,
            address=request.ip or None,
            headers=headers,
            body=getattr(request.ctx, "body", None),
        )

    async def _answer(self, request: Request, workflow: ActiveWorkflow, config: WebhookConfig) -> HTTPResponse:
        """The steps of a call to a webhook whose workflow was found, in order. Each check
        answers the call (a refusal, a capture, a handshake) or lets it go on; a refusal of the
        request itself (413, 415, 400) is raised as a :class:`HooklineError`."""
        key = workflow.key
        # While a sample capture is armed (Mingdao), a GET or POST is captured whatever the
        # workflow's methods, and even before the workflow is enabled; it never runs.
        capturing = request.method in CAPTURE_METHODS and await self.captures.armed(key)
        refused = (
            (None if capturing else refusal(request, workflow, config))
            or self._check_address(request, key, config)
            or self._authenticate(request, key, config)
            or self._check_rate(request, workflow, config)
        )
        if refused is not None:
            return refused
        body = await read_body(request, config.max_body_size)
        request.ctx.body = body  # for the refused calls, should it be refused from here on
        refused = self._check_signature(request, key, config, body)
        if refused is not None:
            return refused
        content_type = media_type(request)
        if not capturing:
            check_content_type(config, body, content_type)
        context = parse_request(request, body, keep_files=config.keep_files)
        redact(context["headers"], config)
        if config.auth is not None:
            context["auth"] = getattr(request.ctx, "auth", None)
        if config.path is not None:
            context["path_params"] = getattr(request.ctx, "path_params", {})
        if capturing:
            answered = await self._capture(request, workflow, config, context, body, content_type)
            if answered is not None:
                return answered
        answered = slack_challenge(config, context)
        if answered is not None:
            return answered
        context["params"] = apply_parameters(context, config.parameters, body_is_text=content_type in _FORM_TYPES)
        if context.get("path_params"):  # every path parameter joins them; declared ones typed
            context["params"] = {**context["path_params"], **context["params"]}
        dedup = config.idempotency.dedup(context) if config.idempotency is not None else None
        if workflow.definition.sync:
            return await self._run_sync(workflow, config, context, dedup)
        return await self._run_async(workflow, config, context, dedup)

    def _check_rate(self, request: Request, workflow: ActiveWorkflow, config: WebhookConfig) -> HTTPResponse | None:
        if config.rate_limit is None:
            return None
        wait = self.buckets.take((workflow.key, workflow.compiled.version_id), config.rate_limit)
        if not wait:
            return None
        return refuse(
            request,
            429,
            "rate_limited",
            f"workflow {workflow.key!r} accepts {config.rate_limit.requests} calls per {config.rate_limit.per:g} s; retry later",
            headers={"Retry-After": retry_after(wait)},
        )

    async def _capture(
        self,
        request: Request,
        workflow: ActiveWorkflow,
        config: WebhookConfig,
        context: dict[str, Any],
        body: bytes,
        content_type: str,
    ) -> HTTPResponse | None:
        """Store the call as the armed capture's sample and say so; ``None`` when another call
        took the capture or it expired meanwhile and the call may run (the usual rules apply:
        a call they refuse is answered here, or raised)."""
        captured = await self.captures.take(workflow.key, context)
        if captured is not None:
            return json_response(
                {"captured": True, "capture": captured, "message": "request captured as a sample; the workflow did not run"}
            )
        refused = refusal(request, workflow, config)
        if refused is not None:
            return refused
        check_content_type(config, body, content_type)
        return None

    def _authenticate(self, request: Request, key: str, config: WebhookConfig) -> HTTPResponse | None:
        """``None`` when the caller may go on (what it proved is kept in ``request.ctx.auth``
        for ``$context.auth``), else the refusal."""
        auth = config.auth
        if auth is None:
            return None
        # A credential header sent twice is ambiguous (which one did a proxy check?): neither counts.
        names = ("authorization", *auth.secret_headers())
        sent = {name: values[0] if len(values := request.headers.getall(name, [])) == 1 else None for name in names}
        verdict = auth.check(sent)
        if verdict.context is not None:
            request.ctx.auth = verdict.context
            return None
        if verdict.misconfigured is not None:
            log.error("webhook %r: %s", key, verdict.misconfigured)
            return refuse(
                request, 503, "misconfigured", "this webhook's credentials are not configured on the server",
                note=verdict.misconfigured,
            )
        log.info("webhook %r: caller refused: %s", key, "; ".join(verdict.reasons))
        return refuse(
            request,
            401,
            "unauthorized",
            f"this webhook needs {auth.wanted()}",
            note=f"unauthorized: {'; '.join(verdict.reasons)}",
            headers={"WWW-Authenticate": auth.challenges(verdict)},
        )

    def _check_address(self, request: Request, key: str, config: WebhookConfig) -> HTTPResponse | None:
        allowlist = config.ip_allowlist
        if allowlist is None or allowlist.allows(request.ip, request.headers.getall("x-forwarded-for", [])):
            return None
        log.info("webhook %r: caller refused by ip_allowlist (peer %s)", key, request.ip)
        return refuse(
            request,
            403,
            "forbidden",
            "this webhook does not accept calls from your address",
            note=f"caller refused by ip_allowlist (peer {request.ip})",
        )

    def _check_signature(self, request: Request, key: str, config: WebhookConfig, body: bytes) -> HTTPResponse | None:
        scheme = config.signature
        if scheme is None:
            return None
        headers = {name.lower(): request.headers.getall(name, []) for name in scheme.header_names()}
        try:
            problem = verify(scheme, headers, body, time.time())
        except MisconfiguredSecret as exc:
            log.error("webhook %r: %s", key, exc)
            return refuse(
                request, 503, "misconfigured", "this webhook's signing secrets are not configured on the server", note=str(exc)
            )
        if problem is None:
            return None
        # The cause is for the operator; the caller gets one answer whatever went wrong.
        log.info("webhook %r: signature refused: %s", key, problem)
        return refuse(
            request,
            401,
            "invalid_signature",
            "the request signature could not be verified",
            note=f"the request signature could not be verified: {problem}",
        )

    async def _run_sync(
        self, workflow: ActiveWorkflow, config: WebhookConfig, context: dict[str, Any], dedup: Dedup | None
    ) -> HTTPResponse:
        try:
            handle = await self.host.executions.start(workflow, context, mode="sync", dedup=dedup)
        except Duplicate as duplicate:
            return await self._sync_duplicate(workflow, config, context, duplicate.execution)
        except Overloaded as exc:
            return error_response(503, exc.code, exc.message, headers={"Retry-After": str(RETRY_AFTER)})
        except Exception:
            return not_recorded(workflow.key)
        try:
            reply = await handle.reply(timeout=config.timeout)
        except TimeoutError:
            # The caller stops waiting; the execution goes on, bounded by the workflow timeout.
            answer = config.timeout_response
            fallback = answer.render(self._scope(answer, workflow.key, handle.execution_id, context))
            return reply_response(reply_of(fallback, default_status=202), execution_id=handle.execution_id)
        if reply is not None:
            return reply_response(reply, execution_id=handle.execution_id)
        try:
            outcome = await handle.outcome()
        except NotRecorded:  # it ran, and not even its failure could be written: retry
            return not_recorded(workflow.key)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():  # this request is cancelled
                raise
            # The run was cancelled by a shutdown: the caller still gets an answer.
            return ended(workflow.key, handle.execution_id, ExecutionStatus.CANCELLED, None)
        return ended(workflow.key, handle.execution_id, outcome.status, outcome.error)

    async def _sync_duplicate(
        self, workflow: ActiveWorkflow, config: WebhookConfig, context: dict[str, Any], first: ExecutionRecord
    ) -> HTTPResponse:
        """A sync delivery already received: the answer the first one got, never a second run.
        While the first still runs, wait for it (up to the trigger's ``timeout``) or refuse."""
        if not first.finished:
            if config.idempotency is not None and config.idempotency.while_running == "reject":
                return error_response(
                    409,
                    "duplicate_in_progress",
                    f"this delivery is already being processed (execution {first.id}); retry later for its answer",
                    headers={"Retry-After": "1", EXECUTION_HEADER: str(first.id), DUPLICATE_HEADER: "true"},
                    execution=first.id,
                )
            try:
                first = await self.host.executions.wait_finished(first.id, config.timeout, or_reply=True) or first
            except Exception:
                return not_recorded(workflow.key)
        if first.reply is not None:  # also while it goes on after answering
            response = reply_response(first.reply, execution_id=first.id)
        elif not first.finished:
            # Still running at the timeout: what the first caller was told too.
            answer = config.timeout_response
            fallback = answer.render(self._scope(answer, workflow.key, first.id, context))
            response = reply_response(reply_of(fallback, default_status=202), execution_id=first.id)
        else:
            response = ended(workflow.key, first.id, first.status, first.error)
        response.headers[DUPLICATE_HEADER] = "true"
        return response

    async def _run_async(
        self, workflow: ActiveWorkflow, config: WebhookConfig, context: dict[str, Any], dedup: Dedup | None
    ) -> HTTPResponse:
        duplicate = False
        try:
            execution_id = await self.host.executions.enqueue(workflow, context, dedup=dedup)
        except Duplicate as exc:
            # The same configured answer as the first delivery got; nothing runs.
            execution_id, duplicate = exc.execution.id, True
        except Overloaded as exc:
            return error_response(503, exc.code, exc.message, headers={"Retry-After": str(RETRY_AFTER)})
        except Exception:
            return not_recorded(workflow.key)
        configured = config.response.render(self._scope(config.response, workflow.key, execution_id, context))
        response = reply_response(reply_of(configured, default_status=200, default_body="ok"), execution_id=execution_id)
        if duplicate:
            response.headers[DUPLICATE_HEADER] = "true"
        return response

    def _scope(self, answer: Template, key: str, execution_id: int, context: dict[str, Any]) -> dict[str, Any]:
        """What the trigger's own answers (``response``, ``timeout_response``) can use. The
        status URL (an HMAC) only when ``answer`` may use it: most answers use none of it."""
        execution: dict[str, Any] = {"id": execution_id}
        if any(source.strip() != "$execution.id" and "execution" in source for source in answer.expressions()):
            token = self.status_token(key, execution_id)
            path = f"/api/webhooks/{key}/executions/{execution_id}?token={token}"
            execution["status_url"] = f"{self.host.settings.base_url}{path}"
        return {"execution": execution, "context": context}

    async def status(self, request: Request, key: str, execution_id: int) -> HTTPResponse:
        found = await self._workflow(key)
        if isinstance(found, HTTPResponse):
            return found
        workflow, config = found
        response = await self._status(request, workflow, config, execution_id)
        add_cors(request, config, response)  # errors too: a page must be able to read them
        return response

    async def _status(
        self, request: Request, workflow: ActiveWorkflow, config: WebhookConfig, execution_id: int
    ) -> HTTPResponse:
        key = workflow.key
        if not workflow.enabled:
            return error_response(404, "workflow_disabled", f"workflow {key!r} is disabled")
        denied = self._check_address(request, key, config) or self._authenticate(request, key, config)
        if denied is not None:
            return denied
        try:
            await self.status_key()
        except Exception:
            return unavailable(key)
        given = request.args.get("token") or ""
        if not hmac.compare_digest(given.encode(), self.status_token(key, execution_id).encode()):
            return error_response(
                403,
                "invalid_token",
                "this status URL's token is missing or wrong; use the status_url the webhook answered with",
            )
        try:
            execution = await self.host.executions.record(execution_id)
        except Exception:
            return unavailable(key)
        if (
            execution is None
            or execution.workflow_id != workflow.id
            or execution.trigger_type != WebhookTrigger.name
            or execution.mode == "manual"
        ):
            return error_response(404, "not_found", f"workflow {key!r} has no webhook execution {execution_id}")
        answer: dict[str, Any] = {"execution": execution_id, "status": execution.status.value}
        if execution.reply is not None:
            answer["reply"] = execution.reply.to_dict()
        return json_response(answer, headers={EXECUTION_HEADER: str(execution_id)})
