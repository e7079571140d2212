"""Wait for a recorded item (an API call, a message, a request) without polling.

A `Waiters` keeps futures with predicates; `notify(item)` resolves the ones it matches.
`wait()` first looks through the items already recorded, so nothing that happened before the
wait began is missed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class Waiters(Generic[T]):
    def __init__(self) -> None:
        self._pending: list[tuple[Callable[[T], bool], asyncio.Future[T]]] = []

    def notify(self, item: T) -> None:
        """Hand a newly recorded item to every waiter whose predicate accepts it."""
        still: list[tuple[Callable[[T], bool], asyncio.Future[T]]] = []
        for predicate, future in self._pending:
            if future.done():
                continue
            try:
                matched = predicate(item)
            except Exception as exc:  # noqa: BLE001 - a broken predicate fails its own wait
                future.set_exception(exc)
                continue
            if matched:
                future.set_result(item)
            else:
                still.append((predicate, future))
        self._pending = still

    async def wait(self, predicate: Callable[[T], bool], *, existing: Iterable[T] = (),
                   timeout: float = 10.0, what: str = "item") -> T:
        """The first item of `existing` that matches, else the next notified one."""
        for item in existing:
            if predicate(item):
                return item
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((predicate, future))
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise TimeoutError(f"no matching {what} within {timeout}s") from None
        finally:
            self._pending = [(p, f) for p, f in self._pending if f is not future]
