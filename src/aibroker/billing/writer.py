"""Group commit for money and usage writes.

Requests hand their operations to one writer task per process. While a batch is being
committed, new operations queue up and go together in the next transaction, so under
load hundreds of requests share one commit, and at low load a request waits for exactly
one. Batches run on one dedicated thread with a synchronous driver: one thread hop per
batch instead of one per statement.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from aibroker.billing.batch import (
    DEFAULT_HOLD_TTL_SECONDS,
    DEFAULT_LEASE_TTL_SECONDS,
    Op,
    apply_batch,
    sweep_expired_holds,
)

log = logging.getLogger(__name__)

MAX_BATCH = 500
CHECKPOINT_SECONDS = 1.0


class MoneyWriter:
    def __init__(
        self, engine: Engine, *, hold_ttl_seconds: int = DEFAULT_HOLD_TTL_SECONDS, inline_engine: Engine | None = None,
        lease_ttl_seconds: float = DEFAULT_LEASE_TTL_SECONDS,
    ) -> None:
        self._engine = engine
        # SQLite only: a connection that never waits for the lock, used on the event loop
        # itself. An uncontended batch then commits without two thread hops; a busy database
        # (another process writing) sends the batch to the thread, which may wait.
        self._inline = inline_engine
        self._last_checkpoint = time.monotonic()
        self._hold_ttl = hold_ttl_seconds
        self.lease_ttl = lease_ttl_seconds
        self._pending: list[tuple[Op, asyncio.Future[Any]]] = []
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="money-writer")
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._idle = asyncio.Event()
        self._idle.set()
        self.loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="money-writer")

    async def drain(self) -> None:
        """Wait until everything queued so far has been committed."""
        while self._pending or not self._idle.is_set():
            await self._idle.wait()
            await asyncio.sleep(0)

    def submit_nowait(self, op: Op) -> asyncio.Future[Any]:
        """Queue one operation without waiting: it commits with the next batch."""
        if self._closing and self._task is not None and self._task.done():
            raise RuntimeError("the money writer has stopped")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((op, future))
        self._idle.clear()
        self._wakeup.set()
        return future

    async def submit(self, op: Op) -> Any:
        """Queue one operation; resolves with its result once its batch has committed."""
        return await self.outcome(self.submit_nowait(op))

    @staticmethod
    async def outcome(future: asyncio.Future[Any]) -> Any:
        """The result of a queued operation. Shielded: a cancelled request must not lose its write."""
        result = await asyncio.shield(future)
        if isinstance(result, Exception):
            raise result
        return result

    async def sweep(self) -> int:
        """Release expired holds, on the writer's own thread (serialized with batches)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._sweep_sync)

    def _sweep_sync(self) -> int:
        with self._engine.begin() as conn:
            return sweep_expired_holds(conn)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                ops = [op for op, _ in batch]
                try:
                    results = self._write_inline(ops) if self._inline is not None else None
                    if results is None:
                        results = await loop.run_in_executor(self._executor, self._write_sync, ops)
                except Exception:  # the transaction rolled back: retry one by one so one bad op fails alone
                    log.exception("money batch of %d failed; retrying each operation alone", len(ops))
                    results = await loop.run_in_executor(self._executor, self._write_each_sync, ops)
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
            self._idle.set()
            self._maybe_checkpoint(loop)
            if self._closing and not self._pending:
                return

    def _write_inline(self, ops: list[Op]) -> list[Any] | None:
        """The batch on the loop's own connection, or None when the database is busy."""
        assert self._inline is not None
        try:
            with self._inline.begin() as conn:
                return apply_batch(conn, ops, hold_ttl_seconds=self._hold_ttl, lease_ttl_seconds=self.lease_ttl)
        except OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return None
            raise

    def _maybe_checkpoint(self, loop: asyncio.AbstractEventLoop) -> None:
        """Fold the WAL into the database file on the writer thread, about once a second:
        the inline connection never does it, so no request waits for the fsync."""
        if self._inline is None or time.monotonic() - self._last_checkpoint < CHECKPOINT_SECONDS:
            return
        self._last_checkpoint = time.monotonic()
        loop.run_in_executor(self._executor, self._checkpoint_sync)

    def _checkpoint_sync(self) -> tuple[int, int, int] | None:
        """(busy, frames in the WAL, frames checkpointed), or None when it failed."""
        # On the raw connection: through SQLAlchemy the engine would BEGIN IMMEDIATE first,
        # and SQLite refuses to checkpoint inside a transaction ("table is locked").
        raw = self._engine.raw_connection()
        try:
            return tuple(raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())  # type: ignore[union-attr,return-value]
        except Exception:  # noqa: BLE001 - the next one will try again
            log.warning("WAL checkpoint failed", exc_info=True)
            return None
        finally:
            raw.close()

    def _write_sync(self, ops: list[Op]) -> list[Any]:
        with self._engine.begin() as conn:
            return apply_batch(conn, ops, hold_ttl_seconds=self._hold_ttl, lease_ttl_seconds=self.lease_ttl)

    def _write_each_sync(self, ops: list[Op]) -> list[Any]:
        results: list[Any] = []
        for op in ops:
            try:
                results.extend(self._write_sync([op]))
            except Exception as exc:
                log.exception("money operation failed: %s", type(op).__name__)
                results.append(exc)
        return results

    async def aclose(self) -> None:
        """Flush what is queued, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)
        self._engine.dispose()
        if self._inline is not None:
            self._inline.dispose()
