"""Every hook a Hookline plugin can implement.

A plugin is a module (or object) with functions marked ``@hookimpl`` whose names match the
specifications below, made known to Hookline through an entry point in the ``hookline`` group::

    [project.entry-points.hookline]
    my_plugin = "my_package.plugin"

Rules that hold for every hook here:

* Hooks are called synchronously, in no guaranteed plugin order; the ``register_*`` hooks once
  per app (or CLI run). Work that must be awaited lives on the objects you register
  (``NodeType.execute``), or in ``startup``, ``shutdown`` and ``execution_failed``, which may be
  ``async def``.
* A hook receives only the arguments it names: ``def register_node_types(register)`` is a
  valid implementation even if the host passes more.
* ``register`` callbacks validate what they receive and raise :class:`hookline.PluginError`
  naming both plugins when a name is already taken; the host refuses to start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping

import pluggy

if TYPE_CHECKING:
    import click
    from sanic import Blueprint

    from hookline.failures import ExecutionFailure
    from hookline.host import Host
    from hookline.types import NodeType, TriggerType
    from hookline.ui import ConsolePage

#: Marks a hook specification. Only Hookline and plugins that declare hooks of their own use it.
hookspec = pluggy.HookspecMarker("hookline")
#: Marks a hook implementation: ``from hookline import hookimpl``.
hookimpl = pluggy.HookimplMarker("hookline")


# --- Extending plugins: hooks a plugin declares for other plugins ----------------------------


@hookspec
def register_hookspecs(register: Callable[[object], None]) -> None:
    """Declare hooks of your own, for other plugins to implement (pytest's ``pytest_addhooks``).

    Called once, right after every plugin is loaded and before hook implementations are
    checked, so that an implementation of your hook in another plugin is accepted.

    :param register: call ``register(my_hookspecs_module)`` with a module (or class) holding
        functions marked with ``hookline.hookspec``. Call your hook later through
        ``host.pm.hook.<name>(...)``, for example in ``register_node_types``.

    Return nothing; the return value is ignored.
    """


# --- Registering types: what workflows can be built from -----------------------------------


@hookspec
def register_trigger_types(register: Callable[[type[TriggerType]], None], host: Host) -> None:
    """Register trigger types: what starts a workflow (a webhook call, a schedule, ...).

    Called once when the host builds its type registry (app start, every CLI command).

    :param register: call ``register(MyTrigger)`` with a subclass of
        :class:`hookline.TriggerType` for each type. Its ``name`` must be unique among all
        installed plugins; a duplicate raises :class:`hookline.PluginError` naming both
        plugins. A class without a ``name`` or ``config_schema`` is refused the same way.
    :param host: the :class:`hookline.Host` being built: its ``settings`` and ``pm`` are
        ready (call hooks your plugin declared through ``host.pm.hook``); its registry is not.

    Return nothing; the return value is ignored.
    """


@hookspec
def register_node_types(register: Callable[[type[NodeType]], None], host: Host) -> None:
    """Register node types: the steps a workflow runs (a condition, a response, an HTTP call).

    Called once when the host builds its type registry (app start, every CLI command).

    :param register: call ``register(MyNode)`` with a subclass of :class:`hookline.NodeType`
        for each type. Names are unique across plugins, as for :func:`register_trigger_types`.
    :param host: as for :func:`register_trigger_types`. A node type that needs what other
        plugins contribute (the condition node's extra operators) builds a subclass bound to
        it here, rather than keeping it in a global.

    Return nothing; the return value is ignored.
    """


# --- Storage: tables a plugin owns ---------------------------------------------------------


@hookspec
def register_models(register: Callable[..., None]) -> None:
    """Contribute tortoise-orm model modules, with the migrations that create their tables.

    Called when the host builds its database configuration (server start, ``hookline
    migrate``, every CLI command that reads the database).

    :param register: call ``register(label, models=["pkg.models"], migrations="pkg.migrations")``.
        ``label`` becomes the tortoise app label (``"pkg"`` lets your models reference host
        models as ``"hookline.Execution"``); it must be unique. ``migrations`` names the package
        holding tortoise migration modules; ``hookline migrate`` and ``hookline serve`` apply them
        after the host's own. Generate them with ``tortoise makemigrations`` (see the guide).

    Return nothing; the return value is ignored.
    """


# --- HTTP: routes a plugin serves ----------------------------------------------------------


@hookspec
def register_routes(register: Callable[[Blueprint], None], host: Host) -> None:
    """Contribute HTTP routes as Sanic blueprints.

    Called once inside ``create_app`` while the app is being built (Sanic finalises its router
    before the server starts, so routes cannot be added later).

    :param register: call ``register(blueprint)`` with a :class:`sanic.Blueprint`. Give it a
        ``url_prefix`` of its own (``/api/my-plugin``); blueprint names must be unique.
    :param host: the :class:`hookline.Host` the app serves; handlers can also reach it as
        ``request.app.ctx.hookline``.

    Return nothing; the return value is ignored.
    """


# --- Lifecycle: a server's start and stop --------------------------------------------------


@hookspec
def startup(host: Host) -> Awaitable[None] | None:
    """The server (each worker process) has opened the database and is about to accept requests.

    Implement it as ``async def`` when there is something to await (open a client pool,
    warm a cache); the host awaits it before serving. A plain function returning ``None`` is
    fine too. An exception stops the server from starting, with the plugin named in the log.

    :param host: the running :class:`hookline.Host`.
    """


@hookspec
def shutdown(host: Host) -> Awaitable[None] | None:
    """The server (each worker process) has stopped serving; the database is still open.

    Same shape as :func:`startup`: ``async def`` or a function returning ``None``. Close what
    ``startup`` opened. An exception is logged and does not prevent the other plugins' shutdown.

    :param host: the running :class:`hookline.Host`.
    """


# --- Events: what happened to executions ---------------------------------------------------


@hookspec
def execution_failed(failure: ExecutionFailure, host: Host) -> Awaitable[None] | None:
    """An execution ended ``failed``, ``error`` or ``timed_out`` (any workflow, any mode).

    Called after the failure is stored, in the server process that stored it (or, if that one
    died first, in another server process or at the next start): **at least once** per failed
    execution. It is called again, to every implementation, if any implementation raised (after
    a minute), or if the process calling it stopped before all of them returned. Make your work
    idempotent by ``failure.id``: for example start executions with
    ``host.executions.enqueue(workflow, context, dedup=Dedup(f"...:{failure.id}"))``, which
    starts nothing for a key already received.

    Implement it as ``async def`` when there is something to await; keep it short (enqueue
    work rather than doing it here): failures are announced one at a time per process, and an
    implementation taking more than 30 s counts as having raised. A failure still refused a day
    after it ended is given up (logged as an error). Only servers and workers announce
    (``hookline serve``, ``hookline worker``); a failure of ``hookline run`` is announced by a
    running server, or the next to start. When no plugin implements the hook, failures are not
    even marked for it.

    :param failure: a :class:`hookline.failures.ExecutionFailure`: ``id``, ``status``, ``mode``,
        ``workflow`` (``{"key", "title", "version"}``), ``trigger_type``, ``node`` (the failing
        node's key, if one failed), ``message``, ``error`` (as stored), ``context`` (the failed
        execution's ``$context`` as stored), ``started_at``, ``finished_at``, ``replay_of`` and
        ``url`` (the execution in the management API); ``to_dict()`` gives it as JSON.
    :param host: the running :class:`hookline.Host`.
    """


# --- Command line --------------------------------------------------------------------------


@hookspec
def register_commands(register: Callable[[click.Command], None]) -> None:
    """Add commands to the ``hookline`` CLI.

    Called once when ``hookline`` starts, before it parses its arguments.

    :param register: call ``register(command)`` with a :class:`click.Command` (or
        ``click.Group``). Its name must not be taken by the host or another plugin.

    Return nothing; the return value is ignored.
    """


# --- The console: what a plugin shows in the browser -----------------------------------


@hookspec
def register_console_pages(register: Callable[[ConsolePage], None], host: Host) -> None:
    """Add pages to the web console: an entry in its navigation, or a tab on each workflow's page.

    Called once by the console (the ``hookline-console`` plugin) while its app is built; never
    called on a server without a console. The console signs the operator in, checks the CSRF
    token of every ``POST``, wraps the page in its layout and sets its security headers.

    :param register: call ``register(ConsolePage(name=..., title=..., render=...))`` with a
        :class:`hookline.ui.ConsolePage` for each page. A page whose name another plugin took,
        or that is malformed, raises :class:`hookline.PluginError` naming both plugins.
    :param host: the :class:`hookline.Host` the console serves.

    Return nothing; the return value is ignored.
    """


@hookspec(firstresult=True)
def render_job_result(job: Mapping[str, Any], host: Host) -> str | None:
    """HTML for one job's result on the console's execution page, instead of its JSON.

    Called by the console for each job it shows; the first plugin returning a string wins.

    :param job: the job as ``GET /api/executions/<id>`` gives it (``node``, ``type``,
        ``status``, ``input``, ``result``, ``branch``, ``error``, ...). Check ``job["type"]``:
        render only your own types' jobs.
    :param host: the :class:`hookline.Host` the console serves.

    Return the HTML as a string, or ``None`` to leave the job to the console (its result as
    pretty-printed JSON). The console inserts the string as it is: escape every value taken
    from the job (``html.escape``), which may hold whatever a webhook caller sent.
    """


#: The hooks that exist, in the order the guide presents them. Used by tests and docs checks.
HOOK_NAMES: tuple[str, ...] = (
    "register_hookspecs",
    "register_trigger_types",
    "register_node_types",
    "register_models",
    "register_routes",
    "startup",
    "shutdown",
    "execution_failed",
    "register_commands",
    "register_console_pages",
    "render_job_result",
)

__all__ = ["HOOK_NAMES", "hookimpl", "hookspec"] + list(HOOK_NAMES)

