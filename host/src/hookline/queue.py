"""The queue: how a queued execution reaches a process that runs it, through a taskiq broker.

The database is the source of truth; the queue only carries execution ids. An async call stores
its execution as ``queued`` (committed before the caller's answer), then sends the id. (With the
memory queue, an async call that finds a run slot free is stored ``running`` and run at once,
without a round trip through the in-process broker; only a backlog goes through it.) Whoever
receives an id claims the row with a conditional update (``queued`` → ``running``, owned by
the receiver) and runs it; an id received twice, or for an execution already taken, finds
nothing to claim. At-least-once delivery is therefore safe, and a lost message loses nothing:
``ExecutionService.recover`` sends again what stays queued too long or what a dead process
was running (see :mod:`hookline.recovery`).

Brokers (``HOOKLINE_QUEUE_URL``):

* ``memory`` (default): taskiq's ``InMemoryBroker``. The process that queues an execution runs
  it; a process that dies leaves its queued rows to the next process that recovers them.
* ``redis://HOST:PORT/DB`` (or ``rediss://``): a Redis stream (``taskiq-redis``'s
  ``RedisStreamBroker``), for ingress and worker processes on any number of machines. A message
  is acknowledged once its execution has run (or found nothing to claim); a message left
  unacknowledged by a dead worker is claimed again by another (``XAUTOCLAIM``) after
  ``HOOKLINE_REDELIVER_AFTER``. That happens only when new messages arrive, which is why the
  database side sends again what is stuck, rather than trusting the broker alone.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from hookline.background import stop_task
from hookline.errors import ConfigurationError

if TYPE_CHECKING:
    from taskiq import AsyncBroker

    from hookline.host import Host

log = logging.getLogger("hookline.queue")

#: The one task: run the queued execution with this id.
TASK_NAME = "hookline.run_execution"
#: Queue URL schemes and what they need installed.
SCHEMES = {"memory": None, "redis": "taskiq-redis", "rediss": "taskiq-redis"}
#: Entries a Redis stream keeps (trimmed approximately). Acknowledged entries are never
#: removed otherwise; an entry trimmed before delivery is sent again from the database.
STREAM_MAXLEN = 1_000_000
#: Redis socket timeouts (seconds): an unreachable Redis fails a send instead of hanging the
#: webhook call (the execution is stored; it is sent again later).
REDIS_TIMEOUT = 5.0


def check_queue_url(url: str) -> None:
    """Refuse a queue URL Hookline cannot use, naming the problem."""
    scheme = "memory" if url == "memory" else urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise ConfigurationError(
            f"unsupported queue URL {redact(url)!r}: use 'memory' (one process) or redis://HOST:PORT/DB (Redis Streams)"
        )
    if scheme != "memory" and not urlsplit(url).hostname:
        raise ConfigurationError(f"queue URL {redact(url)!r} names no host")


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


class ExecutionQueue:
    """One process's side of the queue: sends ids, and with :meth:`receive` runs what arrives."""

    def __init__(self, host: Host) -> None:
        self.host = host
        settings = host.settings
        check_queue_url(settings.queue_url)
        self.url = settings.queue_url
        #: Whether the queue is shared between processes (Redis), not this process's own.
        self.shared = self.url != "memory"
        self._broker: AsyncBroker | None = None
        self._task: Any = None
        self._receiver: asyncio.Task[None] | None = None
        self._finish: asyncio.Event | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def receiving(self) -> bool:
        """Whether this process runs what the queue delivers (always, with ``memory``)."""
        return not self.shared or self._receiver is not None

    def _make_broker(self) -> AsyncBroker:
        settings = self.host.settings
        if not self.shared:
            from taskiq import InMemoryBroker

            # Results are not used: the execution row is the result.
            return InMemoryBroker(max_stored_results=1)
        try:
            from taskiq_redis import RedisStreamBroker
        except ImportError:  # pragma: no cover - depends on the installation
            raise ConfigurationError(
                "HOOKLINE_QUEUE_URL names Redis, but taskiq-redis is not installed: pip install 'hookline[redis]'"
            ) from None

        from redis.asyncio import Redis

        class _RedisStreamBroker(RedisStreamBroker):  # type: ignore[misc]
            """taskiq-redis's broker, with one Redis client for every send and acknowledgement
            (taskiq-redis builds a new one, with its table of response callbacks, for each
            message: some 14% of an ingress's CPU per async call, profiled), and
            acknowledgements that cannot fail a run."""

            _client: Redis | None = None

            def _redis(self) -> Redis:
                # Commands take a connection from the broker's pool each; the client holds none.
                if self._client is None:
                    self._client = Redis(connection_pool=self.connection_pool)
                return self._client

            async def kick(self, message: Any) -> None:
                # As taskiq-redis's kick, through the shared client.
                queue_name = message.labels.get("queue_name") or self.queue_name
                await self._redis().xadd(
                    queue_name, {b"data": message.message}, maxlen=self.maxlen, approximate=self.approximate
                )

            def _ack_generator(self, id: str, queue_name: str) -> Any:  # noqa: A002 - taskiq-redis's name
                async def _ack() -> None:
                    # A message not acknowledged (Redis away) is delivered again later and finds
                    # nothing to claim: a warning, not an error of the execution (taskiq would
                    # leave it as an exception nobody retrieves).
                    try:
                        await self._redis().xack(queue_name, self.consumer_group_name, id)
                    except Exception as exc:
                        log.warning("could not acknowledge message %s (%s: %s)", id, type(exc).__name__, exc)

                return _ack

        redeliver_ms = max(1000, int(settings.redeliver_after * 1000))
        return _RedisStreamBroker(
            self.url,
            queue_name=settings.queue_name,
            consumer_group_name=settings.queue_name,
            # Named after the process, so that XINFO CONSUMERS says who holds what.
            consumer_name=self.host.executions.process_id,
            # A new group starts at the stream's end: what was sent before any process of the
            # group existed is not delivered by the broker, but sent again from the database.
            consumer_id="$",
            maxlen=STREAM_MAXLEN,
            approximate=True,
            idle_timeout=redeliver_ms,
            # Deliveries taken at once per read: no more than this process runs at once, so a
            # busy worker does not hold messages another could run.
            xread_count=max(1, min(100, settings.max_concurrent_runs)),
            xread_block=1000,
            # The lock around XAUTOCLAIM expires if its holder is killed (else it would be held
            # for ever and no worker would reclaim anything).
            unacknowledged_lock_timeout=max(5.0, settings.redeliver_after),
            socket_connect_timeout=REDIS_TIMEOUT,
            socket_timeout=REDIS_TIMEOUT + 2.0,  # longer than a blocking read (xread_block)
        )

    async def start(self) -> None:
        """Connect (and, with Redis, make sure the stream and its consumer group exist)."""
        if self._broker is not None:
            return
        broker = self._make_broker()
        executions = self.host.executions

        async def run_execution(execution_id: int) -> None:
            await executions.run_delivered(execution_id)

        task = broker.register_task(run_execution, task_name=TASK_NAME)
        try:
            await broker.startup()
        except Exception as exc:
            await _quietly(broker.shutdown())
            raise ConfigurationError(f"could not reach the queue at {redact(self.url)}: {exc}") from None
        # Only once connected: a failed start leaves nothing to send through.
        self._broker, self._task = broker, task

    async def send(self, execution_id: int) -> None:
        """Hand an execution's id to the queue (connecting first if need be). Raises if the
        broker is unreachable."""
        if self._task is None:
            if self.shared:  # closed (or never opened): nothing would close a new connection
                raise RuntimeError("the queue is closed")
            await self.start()  # in-process: nothing to connect, nothing to close
        await self._task.kiq(execution_id)

    async def behind(self) -> bool:
        """Whether a shared queue holds messages no worker has read yet (Redis: the consumer
        group's lag). Then executions queued long ago are waiting their turn, not lost."""
        if not self.shared or self._broker is None:
            return False
        from redis.asyncio import Redis

        settings = self.host.settings
        try:
            async with Redis(connection_pool=self._broker.connection_pool) as redis:
                groups = await redis.xinfo_groups(settings.queue_name)
        except Exception:  # no stream yet, or Redis away: nothing says they are waiting
            return False
        for group in groups:
            name = group.get("name", group.get(b"name"))
            if name in (settings.queue_name, settings.queue_name.encode()):
                lag = group.get("lag", group.get(b"lag"))
                return bool(lag)
        return False

    def receive(self, *, concurrency: int, grace: float) -> None:
        """Run what a shared queue delivers, ``concurrency`` at a time, acknowledging each
        message once its execution has run. No-op with ``memory`` (sending runs it here)."""
        if not self.shared or self._receiver is not None or self._broker is None:
            return
        from taskiq.acks import AcknowledgeType
        from taskiq.receiver import Receiver

        self._broker.is_worker_process = True
        self._executor = executor = ThreadPoolExecutor(max_workers=1)  # taskiq's, for sync tasks: none here
        broker = self._broker

        def receiver() -> Receiver:
            return Receiver(
                broker=broker,
                executor=executor,
                validate_params=True,
                max_async_tasks=concurrency,
                max_prefetch=0,
                ack_type=AcknowledgeType.WHEN_EXECUTED,
                wait_tasks_timeout=grace,
            )

        self._finish = asyncio.Event()
        self._receiver = asyncio.get_running_loop().create_task(self._listen(receiver, self._finish))

    async def _listen(self, receiver: Any, finish: asyncio.Event) -> None:
        while not finish.is_set():
            try:
                await receiver().listen(finish)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Redis went away (or came back empty, without the consumer group): taskiq's
                # reader fails. Declare the group again and read again, after a pause.
                log.warning("the queue's reader failed (%s: %s); reading again in 1 s", type(exc).__name__, exc)
                await asyncio.sleep(1)
                if self._broker is not None and not finish.is_set():
                    try:
                        await self._broker.startup()
                    except Exception:
                        pass  # still unreachable: the next read says so

    def stop_receiving(self) -> None:
        """Take no more deliveries (those running go on; see ``ExecutionService.drain``)."""
        if self._finish is not None:
            self._finish.set()

    async def close(self) -> None:
        self.stop_receiving()
        if self._receiver is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._receiver), timeout=5)
            except (asyncio.TimeoutError, Exception):
                await stop_task(self._receiver)
            self._receiver = None
            await _quietly(self._leave_group())
        if self._broker is not None:
            await _quietly(self._broker.shutdown())
            self._broker = None
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
        self._task = None


    async def _leave_group(self) -> None:
        """Remove this process from the Redis consumer group, if it holds no unacknowledged
        message (those stay with it, for another worker to claim): else the group lists every
        worker that ever ran."""
        if self._broker is None:
            return
        from redis.asyncio import Redis

        stream = group = self.host.settings.queue_name
        me = self.host.executions.process_id
        async with Redis(connection_pool=self._broker.connection_pool) as redis:
            for consumer in await redis.xinfo_consumers(stream, group):
                name = consumer.get("name", consumer.get(b"name"))
                if name in (me, me.encode()) and not consumer.get("pending", consumer.get(b"pending")):
                    await redis.xgroup_delconsumer(stream, group, me)


async def _quietly(awaitable: Any) -> None:
    try:
        await awaitable
    except Exception:
        log.warning("closing the queue failed", exc_info=True)
