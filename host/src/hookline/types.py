"""The contracts a plugin implements: :class:`TriggerType` and :class:`NodeType`.

Both are classes registered through a hook (``register_trigger_types``,
``register_node_types``). The host validates every definition against ``config_schema`` (a
JSON Schema) before saving it, then calls the class's own ``check`` for rules a schema cannot
express, and lists every problem with its location.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterable, Mapping, Sequence

from hookline.templates import Template, compile_template

if TYPE_CHECKING:
    from hookline.definitions import NodeDefinition, WorkflowDefinition
    from hookline.host import Host


@dataclass(frozen=True)
class Reply:
    """An answer to whoever waits on a synchronous execution (the webhook caller).

    ``body`` is any JSON value (sent as ``application/json``), or a string sent as text, or
    ``None`` for an empty body. ``headers`` must not contain ``Content-Length``.
    """

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "headers": dict(self.headers), "body": self.body}


@dataclass(frozen=True)
class NodeResult:
    """What :meth:`NodeType.execute` returns.

    :param result: any JSON value; stored on the job and visible to later nodes as
        ``$nodes.<key>`` (a dict is the usual shape: ``{"result": true}`` reads as
        ``$nodes.check.result``).
    :param branch: for branching node types, the name of the branch to run next (one of the
        type's ``branches``); ``None`` runs no branch.
    :param end: stop the workflow after this node; the execution ends ``succeeded``.
    """

    result: Any = None
    branch: str | None = None
    end: bool = False


class NodeRun:
    """What a node sees while it executes: its rendered config and the execution around it.

    Built by the engine for each node run; node authors read it, they never build one
    (except in tests, through ``hookline.testing``).
    """

    __slots__ = ("config", "node", "execution_id", "workflow", "_scope", "_reply")

    def __init__(
        self,
        *,
        config: Any,
        node: NodeDefinition,
        execution_id: int | None,
        workflow: Mapping[str, Any],
        scope: Mapping[str, Any],
        reply: ReplySlot,
    ) -> None:
        #: The node's ``config`` with every ``{{ }}`` resolved.
        self.config = config
        #: The node's definition (``key``, ``type``, raw ``config``).
        self.node = node
        self.execution_id = execution_id
        #: ``{"key", "title", "version"}`` of the running workflow.
        self.workflow = workflow
        self._scope = scope
        self._reply = reply

    @property
    def variables(self) -> Mapping[str, Any]:
        """The scope templates resolve against: ``context``, ``nodes``, ``execution``, ..."""
        return self._scope

    def render(self, value: Any | Template) -> Any:
        """Resolve ``{{ }}`` in ``value`` now. Compile it once in ``__init__`` when you can."""
        template = value if isinstance(value, Template) else compile_template(value)
        return template.render(self._scope)

    @property
    def can_reply(self) -> bool:
        """True when someone waits for an answer (a synchronous trigger) and none was sent."""
        return self._reply.open

    @property
    def replied(self) -> bool:
        """True when a node of this execution has already answered."""
        return self._reply.reply is not None

    def reply(self, reply: Reply) -> bool:
        """Answer the waiting caller. Returns ``False`` (and sends nothing) when nobody waits
        or an earlier node already answered: only the first reply counts."""
        return self._reply.send(reply)


class ReplySlot:
    """The one answer a synchronous execution can give: the engine's side of ``NodeRun.reply``.

    A node's reply is held until the workflow either ends (then it goes out once the execution
    is stored, so an answer means the history is written) or goes on past the replying node
    (then :meth:`release` lets it out early: respond now, keep working).
    """

    __slots__ = ("waiting", "reply", "released", "_listeners")

    def __init__(self, waiting: bool) -> None:
        self.waiting = waiting
        self.reply: Reply | None = None
        self.released = False
        self._listeners: list[Callable[[Reply], object]] = []

    @property
    def open(self) -> bool:
        return self.waiting and self.reply is None

    def send(self, reply: Reply) -> bool:
        if not self.open:
            return False
        self.reply = reply
        return True

    def release(self) -> None:
        """Let the reply out before the execution ends (the workflow continues after it)."""
        if self.reply is None or self.released:
            return
        self.released = True
        for listener in self._listeners:
            listener(self.reply)

    def on_release(self, listener: Callable[[Reply], object]) -> None:
        self._listeners.append(listener)


class NodeType:
    """Base class for node types. Subclass it, set ``name`` and ``config_schema``, implement
    :meth:`execute`, and register the class with the ``register_node_types`` hook.

    One instance is made per node of a workflow version, with the node's raw config, when the
    version is loaded; keep per-node compiled state (templates, regexes) on it.
    """

    #: Unique type name used in workflow definitions (``type: condition``).
    name: ClassVar[str]
    #: One line for people (``hookline plugins``, the API).
    title: ClassVar[str] = ""
    #: JSON Schema for ``config``; the host refuses definitions that do not match it.
    config_schema: ClassVar[Mapping[str, Any]] = {"type": "object"}
    #: Hints for the config form a console generates from ``config_schema``: for a top-level
    #: config property, ``{"label", "help", "widget", "order", "placeholder"}`` (see
    #: :mod:`hookline.ui`). Optional; checked when the type is registered.
    ui_hints: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    #: Branch names a branching type may choose (``("true", "false")``); empty for none.
    branches: ClassVar[tuple[str, ...]] = ()
    #: Render ``{{ }}`` in the whole config before ``execute`` (``run.config``). Set to
    #: ``False`` to get the raw config in ``run.config`` and render parts yourself.
    render_config: ClassVar[bool] = True

    def __init__(self, config: Any) -> None:
        self.config = config
        self.config_template = compile_template(config) if self.render_config else None

    @classmethod
    def check(cls, node: NodeDefinition, workflow: WorkflowDefinition) -> Iterable[str]:
        """Problems a schema cannot express (``"a Response node needs a sync workflow"``).

        Called after ``config`` matched ``config_schema``. Yield or return messages; the host
        adds the node's location. The default finds none.
        """
        return ()

    async def execute(self, run: NodeRun) -> NodeResult:
        """Do the node's work. Raise :class:`hookline.NodeError` for a failure the user should
        see; the execution then ends ``failed`` with this node's key and the message."""
        raise NotImplementedError


class TriggerType:
    """Base class for trigger types: what starts a workflow. Register subclasses with the
    ``register_trigger_types`` hook. One instance serves every workflow of the type.

    A trigger starts executions through :class:`hookline.Host` (``host.executions.start`` or
    ``host.executions.enqueue``), usually from HTTP routes its plugin contributes.
    """

    name: ClassVar[str]
    title: ClassVar[str] = ""
    config_schema: ClassVar[Mapping[str, Any]] = {"type": "object"}
    #: Hints for the config form a console generates from ``config_schema``: for a top-level
    #: config property, ``{"label", "help", "widget", "order", "placeholder"}`` (see
    #: :mod:`hookline.ui`). Optional; checked when the type is registered.
    ui_hints: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    def check(self, workflow: WorkflowDefinition) -> Iterable[str]:
        """Problems with ``workflow.trigger.config`` a schema cannot express. Default: none."""
        return ()

    def prepare(self, workflow: WorkflowDefinition) -> Any:
        """What serving this workflow version needs, made once per process and version (a
        compiled config, regular expressions, templates): called when a process loads the
        version (it was checked), and kept with it while it stays in the host's cache of
        compiled versions. Triggers get it back as ``ActiveWorkflow.trigger_state``. It must
        not fail (checks belong in ``config_schema`` and ``check``). Default: ``None``."""
        return None

    def endpoints(self, workflow: WorkflowDefinition) -> dict[str, str]:
        """Where the workflow can be reached, shown after saving (``{"url": "/api/..."}``)."""
        return {}

    def search_terms(self, workflow: WorkflowDefinition) -> list[str]:
        """Extra strings ``GET /api/workflows?q=`` should match (an id in a URL)."""
        return []

    def addresses(self, workflow: WorkflowDefinition) -> list[str]:
        """Strings (at most 255 characters each) the trigger finds this workflow by besides its
        key, stored with its current version: ``host.workflows.find_by_address(type, address)``
        returns the workflows holding one, with one indexed read however many workflows there
        are. Several workflows may share an address; the trigger tells them apart (the webhook
        trigger's custom paths are stored by first segment and length). Default: none."""
        return []

    async def conflicts(
        self, workflow: WorkflowDefinition, host: Host, pending: Sequence[WorkflowDefinition] = ()
    ) -> list[str]:
        """Problems with saving ``workflow`` beside the workflows stored (and ``pending``: the
        definitions saved together with it, itself among them; the same list for each of them,
        so that it can be indexed once): two workflows answering the same URL. Each problem is a
        sentence naming both workflows; the save is refused with them (``422``). Default: none."""
        return []

    async def manual_context(self, workflow: WorkflowDefinition, data: Any) -> dict[str, Any]:
        """Build ``$context`` for a manual run (``hookline run KEY --input FILE``) from the
        file's content. The default uses the data as it is (a dict) or ``{"data": data}``."""
        return data if isinstance(data, dict) else {"data": data}
