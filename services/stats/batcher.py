"""Group concurrently delivered events into one write (one transaction per batch).

Each subscriber call hands its event to ``EventBatcher.apply`` and waits for the batch it joined
to commit, so a message is acknowledged only after its effects are stored. While one batch is
being written the next one fills up (bounded by the subscriber's prefetch), so the batch size
follows the load: one event at a time when it is quiet, hundreds when a backlog drains.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from shared.errors import describe_error

T = TypeVar("T")
log = logging.getLogger("gridwhistle.stats.batcher")

ApplyBatch = Callable[[Sequence[T]], Awaitable[set[str]]]


class EventBatcher(Generic[T]):
    """Runs ``apply_batch`` over what arrived meanwhile, at most ``max_batch`` items at a time.

    When a batch fails, each of its items is tried alone, so one item the store refuses fails
    only its own message (nacked, then dead-lettered with the reason) and not its neighbours.
    """

    def __init__(self, apply_batch: ApplyBatch[T], key: Callable[[T], str], *, max_batch: int) -> None:
        self._apply_batch = apply_batch
        self._key = key
        self._max_batch = max_batch
        self._waiting: list[tuple[T, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def apply(self, item: T) -> bool:
        """Store ``item`` with the next batch; True when it was applied now, False when it had been before."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all(), name="stats-batch-writer")
        return await asyncio.shield(future)  # a cancelled waiter must not cancel the batch of others

    async def _write_all(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch :]
            await self._write(batch)

    async def _write(self, batch: list[tuple[T, asyncio.Future[bool]]]) -> None:
        try:
            applied = await self._apply_batch([item for item, _ in batch])
        except Exception as error:
            if len(batch) == 1:
                _settle(batch[0][1], error=error)
                return
            log.warning(
                "batch failed; applying its events one by one",
                extra={"size": len(batch), "error": describe_error(error)},
            )
            for one in batch:
                await self._write([one])
            return
        except BaseException as error:  # cancelled (shutdown): the waiters' messages are not acked
            for _, future in batch:
                _settle(future, error=error)
            raise
        for item, future in batch:
            _settle(future, result=self._key(item) in applied)


def _settle(future: asyncio.Future[bool], *, result: bool = False, error: BaseException | None = None) -> None:
    if future.done():
        return
    if isinstance(error, asyncio.CancelledError):
        future.cancel()
    elif error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
