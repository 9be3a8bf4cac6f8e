"""Read the next batches in a background thread while the current step runs.

``num_workers: N`` in a pre-training config keeps up to N batches read ahead by one thread (a
memory-map read is a copy: one thread keeps up, and it does no arithmetic, so it takes nothing
from the intra-op threads); ``0`` reads each batch when the loop asks for it. The batches and
their order are the same either way.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetched(items: Iterable[T], depth: int) -> Iterator[T]:
    """The items of ``items`` in order, produced up to ``depth`` ahead by a background thread.

    ``depth`` 0: no thread. An exception raised while reading is raised here, at the item where
    it happened. Leaving the loop early (``break``, an exception in the loop body) stops the
    thread.
    """
    if depth <= 0:
        yield from items
        return
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Failure(exc))
            return
        put(_DONE)

    reader = threading.Thread(target=read, name="pcm3-prefetch", daemon=True)
    reader.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        reader.join(timeout=5.0)
