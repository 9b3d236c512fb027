"""Workflows and their versions: the one implementation behind the API and the CLI.

Versions are immutable: saving a changed definition always makes a new version and points the
workflow at it; saving an identical definition changes nothing. So a version that has
executions is never edited, and a compiled version can be cached by its id for ever.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

from hookline.definitions import KEY_PATTERN, WorkflowDefinition, missing_types, parse_definition
from hookline.engine import CompiledWorkflow, compile_workflow
from hookline.errors import BadRequest, Conflict, DefinitionError, NotFound, Problem, WorkflowUnavailable, problems_text
from hookline.pagination import Page, cursor_of, parse_cursor
from hookline.storage import readers
from hookline.storage import workflows as stored
from hookline.storage.errors import RowMissing
from hookline.storage.workflows import WorkflowSummary

if TYPE_CHECKING:
    from hookline.host import Host

log = logging.getLogger("hookline.workflows")


@dataclass(frozen=True)
class ActiveWorkflow:
    """What a trigger needs to start an execution of a workflow."""

    id: int
    key: str
    enabled: bool
    compiled: CompiledWorkflow

    @property
    def definition(self) -> WorkflowDefinition:
        return self.compiled.definition

    @property
    def trigger_state(self) -> Any:
        """What the trigger type's ``prepare`` made for this version."""
        return self.compiled.trigger_state


@dataclass(frozen=True)
class SaveResult:
    key: str
    version: int
    enabled: bool
    created: bool
    changed: bool
    endpoints: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "version": self.version,
            "enabled": self.enabled,
            "created": self.created,
            "changed": self.changed,
            "endpoints": self.endpoints,
        }


#: What a compiled version takes in a process's resident memory per character of its stored
#: definition (compact JSON on SQLite, PostgreSQL's jsonb text with its spaces elsewhere):
#: measured, 5,700 small workflows (562 characters each) took 63 MiB more. The cache is bounded
#: in characters, ``HOOKLINE_WORKFLOW_CACHE_MB`` of them at this rate.
BYTES_PER_DEFINITION_CHAR = 16
#: Most version ids remembered as accepted by the installed plugins (about 60 bytes each).
CHECKED_VERSIONS = 100_000
#: Workflows that cannot run here logged one by one at start; the rest are counted.
UNRUNNABLE_LOGGED = 20
#: Stored workflows read at a time when checking which cannot run here.
UNRUNNABLE_BATCH = 1000


class RefusalLog:
    """Tells the operator why a workflow's calls are refused, without flooding the log: the
    first refusal is logged at once, then at most one per ``interval`` seconds per workflow,
    with the number refused since the last line."""

    #: Workflows remembered (a few dozen bytes each); beyond, it starts afresh.
    MOST = 10_000

    def __init__(self, interval: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        #: Workflow key -> (when its last line was logged, calls refused since).
        self._last: dict[str, tuple[float, int]] = {}

    def refused(self, error: WorkflowUnavailable) -> None:
        now = self._clock()
        last = self._last.get(error.key)
        if last is not None and now - last[0] < self.interval:
            self._last[error.key] = (last[0], last[1] + 1)
            return
        if len(self._last) >= self.MOST:
            self._last.clear()
        self._last[error.key] = (now, 0)
        if last is None or not last[1]:
            said = f"its calls are refused (503 workflow_unavailable; logged at most every {self.interval:g} s)"
        else:
            said = f"{last[1] + 1} calls refused since the last report"
        log.warning("%s; %s", error.message, said)


class WorkflowService:
    def __init__(self, host: Host, *, cache_chars: int | None = None) -> None:
        self.host = host
        if cache_chars is None:
            cache_chars = host.settings.workflow_cache_mb * 2**20 // BYTES_PER_DEFINITION_CHAR
        #: Compiled versions, least recently used first, with the size of their definitions.
        self._compiled: OrderedDict[int, tuple[CompiledWorkflow, int]] = OrderedDict()
        self._cache_chars = cache_chars
        self._cached_chars = 0
        #: Versions the installed plugins accepted in this process: compiled again after being
        #: evicted, they are not checked again (a version never changes, nor do the plugins
        #: while the process runs). Checking is most of what compiling a small workflow costs.
        self._checked: set[int] = set()
        #: Versions that could not be compiled here, with why: what ``runnable`` reports.
        self._refused: dict[int, list[Problem]] = {}
        self.refusals = RefusalLog()

    # --- reading -----------------------------------------------------------------------

    async def find(self, key: str) -> ActiveWorkflow | None:
        """The workflow ``key`` with its current version compiled, or ``None``: what a trigger
        calls when a call arrives. Disabled workflows are returned too (``enabled`` is False)
        so callers can say why they refuse.

        :raises WorkflowUnavailable: the current version cannot run on this server; the reason
            is logged for the operator (at most once a minute per workflow). Answer the caller
            with its ``to_dict()`` (a 503 that names no internals).
        """
        try:
            return await self.current(key)
        except DefinitionError as exc:
            unavailable = WorkflowUnavailable(key, exc.problems)
            self.refusals.refused(unavailable)
            raise unavailable from None

    async def current(self, key: str) -> ActiveWorkflow | None:
        """As :meth:`find`, for the operator's own calls (a manual run): nothing is logged.

        :raises DefinitionError: the current version cannot run on this server; its message
            and ``problems`` say why in full (an API answers ``422 invalid_definition``).
        """
        if not is_workflow_key(key):  # no such row; and the column refuses a longer value (a 500)
            return None
        row = await readers.find_workflow(key)  # every call reads it: a change anywhere applies at once
        if row is None or row["current_version_id"] is None:
            return None
        compiled = await self.compiled_version(row["current_version_id"])
        return ActiveWorkflow(id=row["id"], key=row["key"], enabled=row["enabled"], compiled=compiled)

    async def find_by_address(self, trigger_type: str, addresses: str | list[str]) -> list[ActiveWorkflow]:
        """The workflows whose trigger ``trigger_type`` stored any of ``addresses`` for them
        (see ``TriggerType.addresses``; at most 64), current versions compiled, by id; disabled
        ones too. One indexed read. A workflow that cannot run here is left out (and logged, as
        :meth:`find` logs it)."""
        return await self._compiled_rows(
            await readers.find_by_address(trigger_type, [addresses] if isinstance(addresses, str) else list(addresses))
        )

    async def find_by_address_prefix(self, trigger_type: str, prefix: str) -> list[ActiveWorkflow]:
        """As :meth:`find_by_address`, the workflows holding an address that starts with
        ``prefix`` (on SQLite, ASCII letters in any case: check what you get). It reads the
        trigger type's addresses: for checks when saving, not for each call."""
        return await self._compiled_rows(await readers.find_by_address_prefix(trigger_type, prefix))

    async def _compiled_rows(self, rows: list[dict[str, Any]]) -> list[ActiveWorkflow]:
        found = []
        for row in rows:
            if row["current_version_id"] is None:
                continue
            try:
                compiled = await self.compiled_version(row["current_version_id"])
            except DefinitionError as exc:
                self.refusals.refused(WorkflowUnavailable(row["key"], exc.problems))
                continue
            found.append(ActiveWorkflow(id=row["id"], key=row["key"], enabled=row["enabled"], compiled=compiled))
        return found

    async def compiled_version(self, version_id: int) -> CompiledWorkflow:
        cached = self._compiled.get(version_id)
        if cached is not None:
            self._compiled.move_to_end(version_id)
            return cached[0]
        found = await readers.read_version(version_id)
        if found is None:
            raise RowMissing(f"no workflow version {version_id}")
        number, text = found
        # Stored definitions were valid when saved; parsing again instantiates node types and
        # would report a plugin that has since been uninstalled.
        try:
            definition = parse_definition(
                json.loads(text), self.host.registry, stored=True, plugins_checked=version_id in self._checked
            )
            compiled = compile_workflow(definition, self.host.registry, version_id=version_id, number=number)
        except DefinitionError as exc:
            if len(self._refused) >= CHECKED_VERSIONS:
                self._refused.clear()
            self._refused[version_id] = exc.problems
            raise
        self._refused.pop(version_id, None)  # (it failed once, a plugin's prepare for instance)
        if len(self._checked) >= CHECKED_VERSIONS:
            self._checked.clear()
        self._checked.add(version_id)
        size = len(text)
        if version_id not in self._compiled:  # (another call may have compiled it meanwhile)
            self._compiled[version_id] = (compiled, size)
            self._cached_chars += size
        while self._cached_chars > self._cache_chars and len(self._compiled) > 1:
            _, (_, evicted) = self._compiled.popitem(last=False)
            self._cached_chars -= evicted
        return compiled

    async def get(self, key: str) -> dict[str, Any]:
        row = await self._row(key)
        versions = await stored.versions(row.id)
        current = next(v for v in versions if v.id == row.current_version_id)
        return {
            **self._summary(row, current.number, self.problem(current.id, current.definition)),
            "sync": bool(current.definition.get("sync", False)),
            "definition": current.definition,
            "endpoints": self._stored_endpoints(current.definition),
            "versions": [
                {"version": v.number, "created_at": v.created_at.isoformat(), "current": v.id == row.current_version_id}
                for v in versions
            ],
        }

    async def version(self, key: str, number: int) -> dict[str, Any]:
        """Version ``number`` of workflow ``key`` as it was saved: its definition, when, and
        whether it is the current one. :class:`NotFound` for an unknown key or number."""
        row = await self._row(key)
        found = None
        if isinstance(number, int) and 0 < number < 2**31:  # the column's range; beyond, a 500
            found = await stored.version(row.id, number)
        if found is None:
            raise NotFound(f"workflow {key!r} has no version {number}", key=key, version=number)
        return {
            "key": row.key,
            "version": found.number,
            "created_at": found.created_at.isoformat(),
            "current": found.id == row.current_version_id,
            "definition": found.definition,
        }

    async def list(self, *, q: str | None = None, limit: int = 50, cursor: str | None = None) -> Page:
        needle = None
        if q:
            needle = q.strip().lower()
            if "\x00" in needle:  # PostgreSQL refuses NUL in text (a 500); no key or title holds one
                raise BadRequest("q must not contain a NUL character")
            if "/" in needle:  # a pasted URL: its last path segment is the id
                needle = needle.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
        rows, versions, next_before = await stored.page(needle, limit=limit, before=parse_cursor(cursor))
        items = []
        for r in rows:
            version = versions.get(r.current_version_id)
            problem = self.problem(version.id, version.definition) if version is not None else None
            summary = self._summary(r, version.number if version is not None else None, problem)
            summary["sync"] = bool(version.definition.get("sync", False)) if version is not None else None
            items.append(summary)
        return Page(items, cursor_of(next_before))

    def problem(self, version_id: int, definition: Any) -> str | None:
        """Why version ``version_id`` (its stored ``definition``) cannot run on this server, or
        ``None``: a trigger or node type it names is missing (not installed, or its plugin is
        disabled), or it failed when this process loaded it. Cheap: it loads nothing."""
        refused = self._refused.get(version_id)
        if refused is not None:
            return problems_text(refused)
        if version_id in self._checked:
            return None
        missing = missing_types(definition, self.host.registry)
        return problems_text(missing) if missing else None

    async def log_unrunnable(self, *, most: int = UNRUNNABLE_LOGGED) -> int:
        """Log, at WARNING, each enabled workflow whose current version cannot run here and
        why (the first ``most``, then their count); return how many there are. Only the types
        each names are checked, against the installed ones: nothing is compiled, so ten
        thousand stored workflows take a fraction of a second."""
        count, after = 0, 0
        while True:
            rows = await readers.current_definitions(after, UNRUNNABLE_BATCH)
            if not rows:
                break
            after = rows[-1][0]
            for _, key, version_id, definition in rows:
                problem = self.problem(version_id, definition)
                if problem is None:
                    continue
                count += 1
                if count <= most:
                    log.warning("workflow %r cannot run on this server: %s", key, problem)
        if count > most:
            log.warning(
                "%d more enabled workflows cannot run on this server (%d in all); 'hookline workflows list' "
                "and GET /api/workflows show each one with \"runnable\": false and its problem",
                count - most,
                count,
            )
        return count

    # --- writing -----------------------------------------------------------------------

    async def create(self, data: Any) -> SaveResult:
        definition = parse_definition(data, self.host.registry)
        if await stored.exists(definition.key):
            raise Conflict(
                f"workflow {definition.key!r} already exists; use PUT /api/workflows/{definition.key} to change it",
                key=definition.key,
            )
        return await self._save(definition)

    async def replace(self, key: str, data: Any) -> SaveResult:
        await self._row(key)
        return await self._save(parse_definition(data, self.host.registry, key=key))

    async def save(self, data: Any) -> SaveResult:
        """Create the workflow, or save a new version of it if the definition changed."""
        return await self._save(parse_definition(data, self.host.registry))

    async def apply_all(self, documents: list[tuple[str, Any]]) -> list[dict[str, Any]]:
        """Apply several definitions (``source`` names each): all are validated first, and
        nothing is saved unless every one is valid."""
        parsed: list[tuple[str, WorkflowDefinition]] = []
        problems: list[Problem] = []
        sources: dict[str, str] = {}
        for source, data in documents:
            try:
                definition = parse_definition(data, self.host.registry)
            except DefinitionError as exc:
                problems.extend(Problem(f"{source}: {p.location}", p.message) for p in exc.problems)
                continue
            if definition.key in sources:
                problems.append(Problem(f"{source}: key", f"{definition.key!r} is also defined in {sources[definition.key]}"))
            sources[definition.key] = source
            parsed.append((source, definition))
        batch = [definition for _, definition in parsed]  # one list for all: a trigger may index it once
        for source, definition in parsed:
            problems += [Problem(f"{source}: {p.location}", p.message) for p in await self._conflicts(definition, batch)]
        if problems:
            raise DefinitionError(problems, subject="workflow files")
        # Checked above as a whole: saving them one by one must not check each against a half-saved batch.
        return [{"source": source, **(await self._save(d, checked=True)).to_dict()} for source, d in parsed]

    async def delete(self, key: str) -> None:
        row = await self._row(key)
        await stored.delete(row.id)

    async def _save(self, definition: WorkflowDefinition, *, checked: bool = False) -> SaveResult:
        """Save ``definition``, its clashes with the stored workflows checked first unless
        ``checked`` (workflow files: checked together, as the batch will be once saved)."""
        conflicts = [] if checked else await self._conflicts(definition)
        if conflicts:
            raise DefinitionError(conflicts, subject=f"workflow {definition.key!r}")
        trigger = self.host.registry.triggers[definition.trigger.type]
        stored_definition = definition.to_dict()
        digest = _digest(stored_definition)
        saved = await stored.save_version(
            definition.key,
            definition=stored_definition,
            digest=digest,
            title=definition.title,
            enabled=definition.enabled,
            trigger_type=definition.trigger.type,
            search_text=self._search_text(definition),
            addresses=trigger.addresses(definition),
        )
        return SaveResult(
            key=definition.key,
            version=saved.number,
            enabled=definition.enabled,
            created=saved.created,
            changed=saved.changed,
            endpoints=self._endpoints(definition),
        )

    # --- helpers -----------------------------------------------------------------------

    async def _row(self, key: str) -> WorkflowSummary:
        row = await stored.summary(key) if is_workflow_key(key) else None
        if row is None:
            raise NotFound(f"no workflow with key {key!r}", key=key)
        return row

    async def _conflicts(self, definition: WorkflowDefinition, pending: list[WorkflowDefinition] | None = None) -> list[Problem]:
        """What the workflow's trigger type says clashes with the stored workflows (and
        ``pending``, saved together with it)."""
        trigger = self.host.registry.triggers[definition.trigger.type]
        return [Problem("trigger.config", message) for message in await trigger.conflicts(definition, self.host, pending or ())]

    def _stored_endpoints(self, saved: dict[str, Any]) -> dict[str, str]:
        try:
            return self._endpoints(parse_definition(saved, self.host.registry))
        except DefinitionError:  # a plugin it needs was uninstalled: it has no endpoints now
            return {}

    def _endpoints(self, definition: WorkflowDefinition) -> dict[str, str]:
        trigger = self.host.registry.triggers[definition.trigger.type]
        # Full URLs only on HOOKLINE_PUBLIC_URL; else paths, which the caller completes with an
        # address it knows (the API: the request's; serve: its own). A CLI command knows no
        # server's address, and must not show a made-up one.
        return endpoints_at(trigger.endpoints(definition), self.host.settings.public_url or "")

    def _search_text(self, definition: WorkflowDefinition) -> str:
        trigger = self.host.registry.triggers[definition.trigger.type]
        terms = [definition.key, definition.title, *trigger.search_terms(definition)]
        return "\n".join(t.lower() for t in terms if t)

    @staticmethod
    def _summary(row: WorkflowSummary, version: int | None, problem: str | None) -> dict[str, Any]:
        return {
            "key": row.key,
            "title": row.title,
            "enabled": row.enabled,
            "trigger": row.trigger_type,
            "version": version,
            "runnable": problem is None,
            "problem": problem,
            "created_at": row.created_at.isoformat(),
            "updated_at": row.updated_at.isoformat(),
        }


_KEY = re.compile(KEY_PATTERN)


def is_workflow_key(key: Any) -> bool:
    """Whether ``key`` can be a workflow's key. A URL can hold any text, and looking up one
    longer than the key column fails in the ORM's validation instead of finding nothing."""
    return isinstance(key, str) and _KEY.fullmatch(key) is not None


def _digest(definition: dict[str, Any]) -> str:
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def endpoints_at(endpoints: Mapping[str, str], base: str) -> dict[str, str]:
    """``endpoints`` with each path (``/api/...``) made a full URL on ``base``; URLs stay as they are."""
    base = base.rstrip("/")
    return {name: base + url if url.startswith("/") else url for name, url in endpoints.items()}
