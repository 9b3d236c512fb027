"""The workflows' rows (tables ``hookline_workflow`` and ``hookline_workflow_version``): the one
door to them for the workflow service (:mod:`hookline.workflows`: saving a version, the API's
reads), replays and retention. The per-call lookups of webhook calls are
:mod:`hookline.storage.readers`'."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Collection, NamedTuple, Sequence

from tortoise.transactions import in_transaction

from hookline.storage.models import Workflow, WorkflowAddress, WorkflowVersion
from hookline.storage.pages import newest_first

_COLUMNS = ("id", "key", "enabled", "current_version_id")


class WorkflowRow(NamedTuple):
    """A workflow, without its definition."""

    id: int
    key: str
    enabled: bool
    #: The version its trigger runs (``None``: none yet).
    current_version_id: int | None


async def by_key(key: str) -> WorkflowRow | None:
    """The workflow with key ``key``, or ``None``."""
    return _row(await Workflow.filter(key=key).only(*_COLUMNS).first())


async def by_id(workflow_id: int) -> WorkflowRow | None:
    """Workflow ``workflow_id``, or ``None`` (deleted)."""
    return _row(await Workflow.filter(id=workflow_id).only(*_COLUMNS).first())


async def keys_of(workflow_ids: Collection[int]) -> dict[int, str]:
    """The keys of the workflows of ``workflow_ids`` that exist, by id."""
    if not workflow_ids:
        return {}
    return dict(await Workflow.filter(id__in=list(workflow_ids)).values_list("id", "key"))


async def current_definitions(workflow_id: int | None = None) -> dict[int, Any]:
    """The definition of each workflow's current version as stored (not compiled), by workflow
    id; of workflow ``workflow_id`` only, if given. Workflows without a version are left out."""
    workflows = Workflow.filter(current_version_id__not_isnull=True)
    if workflow_id is not None:
        workflows = workflows.filter(id=workflow_id)
    current = dict(await workflows.values_list("current_version_id", "id"))
    if not current:
        return {}
    versions = await WorkflowVersion.filter(id__in=list(current)).values("id", "definition")
    return {current[version["id"]]: version["definition"] for version in versions}


def _row(row: Workflow | None) -> WorkflowRow | None:
    return None if row is None else WorkflowRow(row.id, row.key, row.enabled, row.current_version_id)


# --- the workflow service's reads and writes ---------------------------------------------------


class WorkflowSummary(NamedTuple):
    """A workflow's row as the API shows it (without its definition)."""

    id: int
    key: str
    title: str
    enabled: bool
    trigger_type: str
    current_version_id: int | None
    created_at: datetime
    updated_at: datetime


class VersionRow(NamedTuple):
    """One saved version of a workflow."""

    id: int
    number: int
    definition: Any
    created_at: datetime


class Saved(NamedTuple):
    """What :func:`save_version` did."""

    #: The workflow did not exist before.
    created: bool
    #: A new version was made (``False``: the definition was the current one's).
    changed: bool
    #: The current version's number.
    number: int


async def exists(key: str) -> bool:
    return await Workflow.exists(key=key)


async def summary(key: str) -> WorkflowSummary | None:
    """Workflow ``key``'s row, or ``None``."""
    return _summary(await Workflow.filter(key=key).first())


async def versions(workflow_id: int) -> list[VersionRow]:
    """Every version of workflow ``workflow_id``, newest first."""
    return [_version(v) for v in await WorkflowVersion.filter(workflow_id=workflow_id).order_by("-number")]


async def version(workflow_id: int, number: int) -> VersionRow | None:
    """Version ``number`` of workflow ``workflow_id``, or ``None``."""
    found = await WorkflowVersion.filter(workflow_id=workflow_id, number=number).first()
    return None if found is None else _version(found)


async def page(
    search: str | None, *, limit: int, before: int | None
) -> tuple[list[WorkflowSummary], dict[int, VersionRow], int | None]:
    """A page of workflows newest first (those whose search text contains ``search``, if
    given), the current version of each by id, and the id the next page starts below."""
    query = Workflow.all()
    if search:
        query = query.filter(search_text__contains=search)
    rows, next_before = await newest_first(query, limit=limit, before=before)
    current = WorkflowVersion.filter(id__in=[r.current_version_id for r in rows])
    found = await current.only("id", "number", "definition", "created_at")
    return [_summary(r) for r in rows], {v.id: _version(v) for v in found}, next_before  # type: ignore[misc]


async def delete(workflow_id: int) -> None:
    """Delete a workflow, its versions and its executions (the foreign keys cascade)."""
    await Workflow.filter(id=workflow_id).delete()


async def save_version(
    key: str,
    *,
    definition: Any,
    digest: str,
    title: str,
    enabled: bool,
    trigger_type: str,
    search_text: str,
    addresses: Sequence[str] = (),
) -> Saved:
    """Create workflow ``key`` or, unless its current version has ``digest`` already, add a
    version with ``definition`` and make it current, with the row's other columns and its
    trigger's ``addresses``: in one transaction, the row locked (two processes saving at once
    make two versions in turn)."""
    async with in_transaction():
        row = await Workflow.filter(key=key).select_for_update().first()
        created = row is None
        if row is None:
            row = await Workflow.create(key=key, trigger_type=trigger_type)
        current = (
            await WorkflowVersion.filter(id=row.current_version_id).first()
            if row.current_version_id is not None
            else None
        )
        changed = current is None or current.digest != digest
        if changed:
            number = (current.number if current else 0) + 1
            current = await WorkflowVersion.create(workflow=row, number=number, definition=definition, digest=digest)
            row.current_version_id = current.id
            row.title = title
            row.enabled = enabled
            row.trigger_type = trigger_type
            row.search_text = search_text
            await row.save()
            await WorkflowAddress.filter(workflow_id=row.id).delete()
            if addresses:
                await WorkflowAddress.bulk_create(
                    [WorkflowAddress(workflow_id=row.id, trigger_type=trigger_type, address=a) for a in addresses]
                )
    assert current is not None
    return Saved(created=created, changed=changed, number=current.number)


def _summary(row: Workflow | None) -> WorkflowSummary | None:
    if row is None:
        return None
    return WorkflowSummary(
        row.id,
        row.key,
        row.title,
        row.enabled,
        row.trigger_type,
        row.current_version_id,
        row.created_at,
        row.updated_at,
    )


def _version(row: WorkflowVersion) -> VersionRow:
    return VersionRow(row.id, row.number, row.definition, row.created_at)
