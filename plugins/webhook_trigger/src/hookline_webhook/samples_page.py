"""The console's "Samples" tab of a webhook workflow: paste a sample, or capture the next request,
then tick the parameters found and save them into the trigger config.

A thin view over :mod:`hookline_webhook.samples` (parsing), :class:`CaptureService` (capture) and
``host.workflows`` (a new version with the parameters). The HTML is in ``console/*.html``,
rendered by the console's Jinja environment (``view.render_template``): this plugin does not
depend on a template engine itself.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Mapping

from hookline import DefinitionError
from hookline.errors import BadRequest, NotFound, Problem
from hookline.ui import ConsolePage, ConsoleView
from hookline.web import endpoints_at

from hookline_webhook.capture import DEFAULT_WINDOW, CaptureService
from hookline_webhook.params import TYPES
from hookline_webhook.samples import ALL_PARTS, SampleError, context_sample, examples, parse_sample

if TYPE_CHECKING:
    from hookline import Host

#: The kinds of sample the paste form offers, as :func:`parse_sample` names them.
KINDS = {"url": "URL or query string", "json": "JSON body", "pairs": "Key-value pairs"}
PAIR_PARTS = {"body": "the body", "query": "the query string", "headers": "the headers"}
ACTIONS = ("parse", "save", "arm", "cancel")
#: Headers every HTTP client or proxy sends: found in a captured request, they start unticked
#: (a workflow that declares ``host`` required refuses callers for what is not their payload).
TRANSPORT_HEADERS = frozenset({
    "accept", "accept-encoding", "accept-language", "cache-control", "connection", "content-length",
    "content-type", "expect", "host", "keep-alive", "pragma", "te", "transfer-encoding", "upgrade",
    "user-agent", "via", "forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto",
    "x-forwarded-port", "x-real-ip", "x-request-id",
})


@dataclass
class Row:
    """One parameter of the tick-and-save table."""

    part: str
    path: str
    alias: str = ""
    required: bool = False
    type: str = ""
    use: bool = True
    declared: bool = False
    example: Any = None
    has_example: bool = False


def samples_page(captures_of: Callable[[Host], CaptureService]) -> ConsolePage:
    """The tab; ``captures_of(host)`` gives the capture service the webhook routes use."""

    async def render(view: ConsoleView) -> str:
        return await SamplesTab(view, captures_of(view.host)).render()

    return ConsolePage(
        name="samples",
        title="Samples",
        scope="workflow",
        trigger="webhook",
        templates="hookline_webhook:console",
        render=render,
    )


class SamplesTab:
    def __init__(self, view: ConsoleView, captures: CaptureService) -> None:
        assert view.workflow is not None  # a workflow tab
        self.view = view
        self.captures = captures
        self.workflow = view.workflow
        self.key: str = view.workflow["key"]
        self.state: dict[str, Any] = {
            "kind": "json",
            "into": "body",
            "sample": "",
            "parse_problem": None,
            "paste_rows": [],
            "save_problems": [],
            "save_source": None,
            "capture_rows": None,
            "saved": None,
            "message": None,
        }

    async def render(self) -> str:
        if self.view.request.method == "POST":
            await self.act(self.field("action"))
        capture = await self.captures.latest(self.key)
        if capture and capture["status"] == "captured" and self.state["capture_rows"] is None:
            self.state["capture_rows"] = self.rows_of(
                capture["parameters"], examples(context_sample(capture["request"])), captured=True
            )
        base = f"{self.view.request.scheme}://{self.view.request.host}"
        return self.view.render_template(
            "samples.html",
            workflow=self.workflow,
            kinds=KINDS,
            pair_parts=PAIR_PARTS,
            types=TYPES,
            capture=capture,
            endpoints=endpoints_at(self.workflow.get("endpoints") or {}, base),
            time_left=_time_left(capture),
            window_minutes=DEFAULT_WINDOW // 60,
            **self.state,
        )

    # --- actions --------------------------------------------------------------------------

    async def act(self, action: str) -> None:
        if action == "parse":
            self.parse()
        elif action == "save":
            await self.save()
        elif action == "arm":
            await self.captures.arm(self.key, DEFAULT_WINDOW)
        elif action == "cancel":
            try:
                await self.captures.cancel(self.key)
            except NotFound:
                self.view.status = 409
                self.state["message"] = "No capture was armed: it had already taken a request, expired or been cancelled."
        else:
            raise BadRequest(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")

    def parse(self) -> None:
        kind, sample, into = self.field("kind"), self.field("sample"), self.field("into", "body")
        self.state.update(kind=kind, sample=sample, into=into)
        if kind not in KINDS:
            raise BadRequest(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        request: dict[str, Any] = {kind: sample}
        if kind == "pairs":
            request["into"] = into
        path = (self.workflow["definition"]["trigger"].get("config") or {}).get("path")
        if kind == "url" and path and "/api/webhooks/" in sample:  # a URL of the custom path: its parameters too
            request["path"] = path
        try:
            parsed = parse_sample(request)
        except SampleError as exc:
            self.view.status = 400
            self.state["parse_problem"] = exc.message
            return
        self.state["paste_rows"] = self.rows_of(parsed["parameters"], parsed["examples"])

    async def save(self) -> None:
        source = self.field("source")
        if source not in ("paste", "capture"):
            raise BadRequest(f"source must be 'paste' or 'capture', not {source!r}")
        if source == "paste":
            self.state.update(kind=self.field("kind", "json"), sample=self.field("sample"), into=self.field("into", "body"))
        rows = self.posted_rows()
        self.state[f"{source}_rows"] = rows
        chosen = [row for row in rows if row.use]
        if not chosen:
            self.fail(source, 400, [Problem("parameters", "tick at least one parameter to save")])
            return
        definition = copy.deepcopy(dict(self.workflow["definition"]))
        trigger = definition["trigger"]
        trigger["config"] = merge_parameters(trigger.get("config") or {}, chosen)
        try:
            result = await self.view.host.workflows.replace(self.key, definition)
        except DefinitionError as exc:
            self.fail(source, 422, exc.problems)
            return
        self.workflow = await self.view.host.workflows.get(self.key)
        self.state["saved"] = {"version": result.version, "changed": result.changed, "count": len(chosen)}
        # Shown again from the saved config: what is declared now.
        for row in rows:
            row.declared = row.declared or row.use
        if source == "capture":
            self.state["capture_rows"] = None  # regenerated from the capture, marked declared

    def fail(self, source: str, status: int, problems: list[Problem]) -> None:
        self.view.status = status
        self.state.update(save_problems=problems, save_source=source)

    # --- rows -----------------------------------------------------------------------------

    def rows_of(
        self, parameters: Mapping[str, list[Mapping[str, Any]]], seen: Mapping[str, Mapping[str, Any]], *, captured: bool = False
    ) -> list[Row]:
        """The table's rows: the parameters found, those already declared in the trigger config
        shown as declared (with their alias, required and type). In a captured request, the
        headers any client or proxy sends start unticked (a pasted sample's were typed on purpose)."""
        config = self.workflow["definition"]["trigger"].get("config") or {}
        rows = []
        for part in ALL_PARTS:
            declared = {item.get("path"): item for item in config.get(part) or [] if isinstance(item, Mapping)}
            values = seen.get(part, {})
            for item in parameters.get(part) or []:
                path = item["path"]
                old = declared.get(path)
                source = old if old is not None else item
                rows.append(
                    Row(
                        part=part,
                        path=path,
                        alias=source.get("alias", ""),
                        required=bool(source.get("required", False)),
                        type=source.get("type", "") if old is not None else item.get("type", ""),
                        use=old is not None or not (captured and part == "headers" and path.lower() in TRANSPORT_HEADERS),
                        declared=old is not None,
                        example=values.get(path),
                        has_example=path in values,
                    )
                )
        return rows

    def posted_rows(self) -> list[Row]:
        count = self.field("rows", "0")
        if not count.isdigit():
            raise BadRequest(f"rows must be a number, not {count!r}")
        rows = []
        for index in range(int(count)):
            part, path = self.field(f"p{index}.part"), self.field(f"p{index}.path")
            if part not in ALL_PARTS:
                raise BadRequest(f"parameter {index + 1}: part must be one of {', '.join(ALL_PARTS)}, not {part!r}")
            if not path:
                raise BadRequest(f"parameter {index + 1} has no path")
            kind = self.field(f"p{index}.type")
            if kind and kind not in TYPES:
                raise BadRequest(f"parameter {path!r}: type must be one of {', '.join(TYPES)} or empty, not {kind!r}")
            rows.append(
                Row(
                    part=part,
                    path=path,
                    alias=self.field(f"p{index}.alias").strip(),
                    required=self.field(f"p{index}.required") == "1",
                    type=kind,
                    use=self.field(f"p{index}.use") == "1",
                )
            )
        return rows

    def field(self, name: str, default: str = "") -> str:
        values = self.view.form.get(name) or []
        return values[0] if values else default


def merge_parameters(config: Mapping[str, Any], chosen: list[Row]) -> dict[str, Any]:
    """``config`` with the ``chosen`` parameters declared: a path already declared in its part is
    replaced (its ``description`` kept), a new one appended."""
    merged = dict(config)
    for part in ALL_PARTS:
        new = [row for row in chosen if row.part == part]
        if not new:
            continue
        items = [dict(item) for item in merged.get(part) or []]
        where = {item.get("path"): index for index, item in enumerate(items)}
        for row in new:
            item: dict[str, Any] = {"path": row.path}
            if row.alias:
                item["alias"] = row.alias
            item["required"] = row.required
            if row.type:
                item["type"] = row.type
            if row.path in where:
                old = items[where[row.path]]
                if "description" in old:
                    item["description"] = old["description"]
                items[where[row.path]] = item
            else:
                where[row.path] = len(items)
                items.append(item)
        merged[part] = items
    return merged


def _time_left(capture: Mapping[str, Any] | None) -> str:
    """``m:ss`` until an armed capture expires, as console.js then counts it down."""
    if not capture or capture["status"] != "armed":
        return ""
    left = (datetime.fromisoformat(capture["expires_at"]) - datetime.now(timezone.utc)).total_seconds()
    seconds = max(0, round(left))
    return f"{seconds // 60}:{seconds % 60:02d}"
