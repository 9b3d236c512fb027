"""Hook implementations: the entry point ``error_trigger = "hookline_error_trigger.plugin"``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from hookline import Dedup, Duplicate, TriggerType, hookimpl

from hookline_error_trigger.throttle import Throttle
from hookline_error_trigger.trigger import NAME, ExecutionFailedTrigger, Watch, failure_context, watchers

if TYPE_CHECKING:
    from hookline import ExecutionFailure, Host

log = logging.getLogger("hookline.error_trigger")

#: How long a failure's idempotency key holds: a failure announced again within it (the host
#: announces at least once) starts nothing more. Announcements come again within minutes; a
#: week leaves room for a database away for days.
DEDUP_WINDOW = timedelta(days=7)


@hookimpl
def register_trigger_types(register: Callable[[type[TriggerType]], None]) -> None:
    register(ExecutionFailedTrigger)


#: Each host's count of the runs its error workflows started in the last minute (weakly keyed:
#: two hosts in one process, tests, never share one).
_throttles: WeakKeyDictionary[Host, Throttle] = WeakKeyDictionary()


@hookimpl
async def execution_failed(failure: ExecutionFailure, host: Host) -> None:
    if failure.trigger_type == NAME:
        # No loops: an error workflow's failure starts no error workflow, its own or another's.
        log.warning(
            "error workflow %r failed (execution %s: %s); error workflows do not run for error workflows",
            failure.workflow["key"],
            failure.id,
            failure.message,
        )
        return
    context = None
    throttle = _throttles.setdefault(host, Throttle())
    for workflow in await watchers(host, failure):
        watch: Watch = workflow.compiled.trigger_state
        if not throttle.admit(workflow.key, watch.max_runs_per_minute):
            continue  # counted, and said once a minute
        context = context or failure_context(failure)
        try:
            # Queued (committed) before this returns; the same failure announced again finds its
            # key and starts nothing. A full backlog raises: the host announces it again later.
            await host.executions.enqueue(workflow, context, dedup=Dedup(f"{NAME}:{failure.id}", DEDUP_WINDOW))
        except Duplicate:
            pass
