"""The workflows' rows (tables ``hookline_workflow`` and ``hookline_workflow_version``) as the
services other than :mod:`hookline.workflows` read them: replays and retention. (The workflow
service still writes and reads its rows itself; that moves here next.)"""

from __future__ import annotations

from typing import Any, Collection, NamedTuple

from hookline.storage.models import Workflow, WorkflowVersion

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
