"""Group commit on SQLite: the hot path's writes of concurrent calls (see
:mod:`hookline.storage.sql`) committed together, in one transaction and one fsync, in the
thread of aiosqlite's connection."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from typing import Any

from tortoise.exceptions import IntegrityError, OperationalError

from hookline.storage.connection import default_connection, sqlite_client
from hookline.storage.sql import SqliteWrite


def _as_tortoise_error(exc: BaseException) -> BaseException:
    """sqlite3's errors as tortoise raises them (callers catch tortoise's ``IntegrityError``)."""
    if isinstance(exc, sqlite3.IntegrityError):
        return IntegrityError(exc)
    if isinstance(exc, sqlite3.OperationalError):
        return OperationalError(exc)
    return exc


def _run_group(
    connection: sqlite3.Connection, writes: list[SqliteWrite], timeout_ms: int
) -> tuple[list[tuple[Any, BaseException | None]], bool]:
    """In the SQLite connection's thread: the group's writes in one transaction, all or nothing
    each: one that fails is rolled back alone. Returns each write's outcome, and whether the
    transaction had to wait for another process's to start.

    The writes are first run one after the other, without a savepoint each (two statements
    fewer per write: each statement hands the GIL over and back, which costs more than the
    statement, with the event loop busy). If one fails, the transaction is rolled back and the
    group run again, each write in a savepoint: writes are functions of the connection alone,
    so running one again after the rollback does the same."""
    waited = _begin(connection, timeout_ms)
    try:
        try:
            outcomes: list[tuple[Any, BaseException | None]] = [(write(connection), None) for write in writes]
        except Exception:
            connection.execute("ROLLBACK")
            _begin(connection, timeout_ms)
            outcomes = [_in_savepoint(connection, write) for write in writes]
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    return outcomes, waited


def _in_savepoint(connection: sqlite3.Connection, write: SqliteWrite) -> tuple[Any, BaseException | None]:
    """``write``, rolled back alone if it fails: its result, or its error (as tortoise's)."""
    connection.execute("SAVEPOINT hookline_write")
    try:
        result = write(connection)
    except Exception as exc:
        connection.execute("ROLLBACK TO hookline_write")
        connection.execute("RELEASE hookline_write")
        return None, _as_tortoise_error(exc)
    connection.execute("RELEASE hookline_write")
    return result, None


#: How often a group waiting for another process's write transaction tries again (s).
LOCK_POLL = 0.0005


def _begin(connection: sqlite3.Connection, timeout_ms: int) -> bool:
    """``BEGIN IMMEDIATE``, on a connection whose ``busy_timeout`` is 0 (see
    :meth:`GroupCommit._drain`); while another process writes, try again every ``LOCK_POLL``
    for up to ``timeout_ms`` (the connection's own ``busy_timeout``), then fail as SQLite would
    ("database is locked"). Returns whether it had to wait. SQLite's own wait sleeps 1, 2, 5,
    10, 15, 20, 25 ms... between tries: a process that missed the lock twice slept through the
    other's pauses between its groups, and waited up to a tenth of a second (p99,
    ``--workers 2``)."""
    deadline = None
    while True:
        try:
            connection.execute("BEGIN IMMEDIATE")
            return deadline is not None
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF != sqlite3.SQLITE_BUSY:
                raise
            now = time.monotonic()
            if deadline is None:
                deadline = now + timeout_ms / 1000
            elif now >= deadline:
                raise
        time.sleep(LOCK_POLL)


class GroupCommit:
    """Writes of concurrent calls committed together, on SQLite: one transaction, one commit
    (one fsync) for all the executions recorded or finished meanwhile, instead of one each.
    Each caller's ``await`` returns once the transaction holding its write is committed, so an
    answer still means the write is durable.

    Each write is a function of the ``sqlite3`` connection (and of nothing else: it may be run
    again, see :func:`_run_group`), all or nothing: one that fails (a constraint) fails alone,
    the others of its group are written. The groups are written in the thread of aiosqlite's
    connection, under tortoise's connection lock, by one call that goes on while writes keep
    coming: it takes the writes queued meanwhile as the next group as soon as a group is
    committed, and hands each group's results to the event loop without waiting for it. A
    round trip to that thread costs about as much as the statement itself, and the loop, busy
    with the calls, takes a millisecond or more to come back to it: paying both between groups
    made the loop wait for the database with the machine half idle. After ``GROUPS_PER_TURN``
    groups the call returns, so that tortoise's own queries waiting for the lock get their
    turn. On PostgreSQL concurrent connections commit in parallel, and writes go straight to
    the database.
    """

    #: Most writes in one transaction.
    MAX_BATCH = 256
    #: Most groups written in one call to the connection's thread.
    GROUPS_PER_TURN = 16
    #: Once a transaction had to wait for another process's, for ``SHARED_FOR`` seconds the
    #: thread pauses ``PAUSE`` between groups: the lock is free meanwhile, and the other
    #: process, trying again every ``LOCK_POLL``, takes its turn. Without the pause, a process
    #: writing group after group would leave it almost no chance (seconds of waiting, measured
    #: with ``--workers 2``).
    SHARED_FOR = 30.0
    PAUSE = 0.001

    def __init__(self) -> None:
        #: Writes not yet taken by the thread, whether the writer task is there to take them
        #: (one at most), and whether it stops; shared with the connection's thread, under
        #: ``_mutex``.
        self._pending: list[tuple[SqliteWrite, asyncio.Future[Any]]] = []
        self._writing = False
        self._stopping = False
        self._mutex = threading.Lock()
        self._writer: asyncio.Task[None] | None = None
        #: Until when (``time.monotonic()``) another process is taken to write to the file too
        #: (the connection's thread only).
        self._shared_until = 0.0

    @staticmethod
    def applies() -> bool:
        return sqlite_client(default_connection()) is not None

    async def run(self, write: SqliteWrite) -> Any:
        """Run ``write(sqlite3_connection)`` in the next group's transaction; its result once
        committed (or its exception, as tortoise's)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._mutex:
            self._pending.append((write, future))
            start, self._writing = not self._writing, True
        if start:
            self._writer = loop.create_task(self._write())
        return await asyncio.shield(future)

    async def _write(self) -> None:
        try:
            await self._write_groups()
        except asyncio.CancelledError:
            self._fail_pending(RuntimeError("the writer stopped"))
            raise
        except Exception as exc:  # no connection, or its thread failed the call: none is written
            self._fail_pending(_as_tortoise_error(exc))

    async def _write_groups(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            client = sqlite_client(default_connection())
            if client is None:
                raise OperationalError("the SQLite connection was closed or replaced")
            async with client._lock:  # what tortoise's own queries and transactions take
                if client._connection is None:
                    await client.create_connection(with_db=True)
                connection = client._connection
                done = asyncio.ensure_future(connection._execute(self._drain, connection._conn, loop))
                try:
                    await asyncio.shield(done)
                except asyncio.CancelledError:
                    # The group in the thread commits (or not) all the same, and its callers
                    # are told; the thread takes no further group. Wait for it, lock held.
                    with self._mutex:
                        self._stopping = True
                    await _wait_out(done)
                    raise
            with self._mutex:
                if not self._pending:  # the writer ends; the next write starts another
                    self._writing = False
                    return

    def _fail_pending(self, error: BaseException) -> None:
        with self._mutex:
            pending, self._pending = self._pending, []
            self._writing = self._stopping = False
        _settle(pending, None, error)

    def _drain(self, connection: sqlite3.Connection, loop: asyncio.AbstractEventLoop) -> None:
        """In the connection's thread: write the queued writes, group after group, until none
        is left (or the turn is over); each group's callers are answered as soon as it is
        committed. For the turn, the connection's ``busy_timeout`` is 0 (:func:`_begin` waits
        for other processes itself), and restored after it for tortoise's own queries (which
        wait for the lock this turn holds)."""
        timeout_ms = int(connection.execute("PRAGMA busy_timeout").fetchone()[0])
        connection.execute("PRAGMA busy_timeout=0")
        try:
            self._write_turn(connection, loop, timeout_ms)
        finally:
            connection.execute(f"PRAGMA busy_timeout={timeout_ms}")

    def _write_turn(self, connection: sqlite3.Connection, loop: asyncio.AbstractEventLoop, timeout_ms: int) -> None:
        for turn in range(self.GROUPS_PER_TURN):
            if turn and time.monotonic() < self._shared_until:
                time.sleep(self.PAUSE)  # the lock is free meanwhile: the other process's turn
            with self._mutex:
                if self._stopping or not self._pending:
                    return
                batch, self._pending = self._pending[: self.MAX_BATCH], self._pending[self.MAX_BATCH :]
            try:
                outcomes, contended = _run_group(connection, [write for write, _ in batch], timeout_ms)
                error = None
            except BaseException as exc:  # the transaction failed: none of them is durable
                outcomes, error = None, _as_tortoise_error(exc)
                contended = isinstance(exc, sqlite3.OperationalError)  # "database is locked", most likely
            if contended:
                self._shared_until = time.monotonic() + self.SHARED_FOR
            try:
                loop.call_soon_threadsafe(_settle, batch, outcomes, error)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                return


async def _wait_out(done: asyncio.Future[Any]) -> None:
    """Wait for ``done`` through any number of cancellations."""
    while not done.done():
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            continue
        except Exception:
            break


def _settle(
    batch: list[tuple[SqliteWrite, asyncio.Future[Any]]],
    outcomes: list[tuple[Any, BaseException | None]] | None,
    error: BaseException | None,
) -> None:
    """Answer each write's caller: its own outcome, or ``error`` for the whole batch."""
    for index, (_, future) in enumerate(batch):
        if future.done():
            continue
        result, failure = (None, error) if outcomes is None else outcomes[index]
        if failure is None:
            future.set_result(result)
        else:
            future.set_exception(failure)
