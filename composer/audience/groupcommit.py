"""Group commit: writes that arrive from many threads at once go out together, one batch a turn.

Each file that many requests write (a list, consent.csv) has one `GroupCommit`. A caller adds
its items to the queue and waits for the writer's turn; whoever gets the turn writes every item
queued so far in one locked pass, so 500 sign-ups cost a few rewrites of a list, not 500.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Request(Generic[T, R]):
    """One caller's items, and what became of them."""

    items: Sequence[T]
    results: list[R] = field(default_factory=list)
    done: bool = False
    error: BaseException | None = None


class GroupCommit(Generic[T, R]):
    """Runs `write(items) -> results` (one result per item) for batches of queued requests."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._writer = threading.Lock()
        self._pending: list[_Request[T, R]] = []

    def submit(self, items: Sequence[T], write: Callable[[list[T]], list[R]]) -> list[R]:
        """Write `items` (with whatever else is queued) with `write`; their results, in order.

        Every caller of one file must pass an equivalent `write`: the turn's owner writes all.
        """
        request: _Request[T, R] = _Request(items)
        with self._mutex:
            self._pending.append(request)
        with self._writer:
            if not request.done:
                with self._mutex:
                    batch, self._pending = self._pending, []
                self._run(batch, write)
        if request.error is not None:
            raise request.error
        return request.results

    def _run(self, batch: list[_Request[T, R]], write: Callable[[list[T]], list[R]]) -> None:
        try:
            items = [item for request in batch for item in request.items]
            results = write(items)
            if len(results) != len(items):
                raise RuntimeError("a batch writer must give one result per item")
            at = 0
            for request in batch:
                request.results = results[at : at + len(request.items)]
                at += len(request.items)
        except BaseException as exc:  # every caller of the batch hears of it, not only this one
            for request in batch:
                request.error = exc
        finally:
            for request in batch:
                request.done = True


class GroupRegistry(Generic[T, R]):
    """One `GroupCommit` per file, for every thread of the process."""

    def __init__(self) -> None:
        self._groups: dict[str, GroupCommit[T, R]] = {}
        self._mutex = threading.Lock()

    def submit(
        self, path: Path, items: Sequence[T], write: Callable[[list[T]], list[R]]
    ) -> list[R]:
        """`write` `items` to `path`, batched with the other threads' writes to it."""
        key = os.path.abspath(path)
        with self._mutex:
            group = self._groups.setdefault(key, GroupCommit())
        return group.submit(items, write)
