"""Decode ahead: a producer thread runs a frame iterator into a small bounded queue.

Decoding (PyAV/FFmpeg), colour conversion and thumbnailing release the GIL, and so does inference in
torch, so a frame can be decoded while the model looks at the one before; on two cores this hides
most of the decoding behind inference.

Guarantees, since audits depend on them:

* order: items come out exactly in the order the iterator made them;
* errors: an exception raised by the iterator in the producer thread is raised again, as the same
  object, by the consumer after every item made before it, so a ``VideoError`` still becomes exit 2
  and a source's ``report`` (truncation, corruption) is complete once iteration ends;
* lifetime: ``close()`` (also on leaving the ``with`` block, on any exception, KeyboardInterrupt
  included) stops the producer, lets it close its iterator (a generator's ``finally`` runs in the
  producer thread, where it ran), and joins it, so the thread never outlives its user;
* memory: at most ``depth`` items wait in the queue, plus the one the producer is making.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Final, Generic, TypeVar

T = TypeVar("T")

DEFAULT_DEPTH: Final[int] = 2
"""Items decoded ahead: enough to smooth out one slow frame; each 1080p frame is 6 MiB."""

# How often a producer blocked on a full queue looks whether it was asked to stop.
_STOP_POLL_S: Final[float] = 0.05


class _End:
    """Queued after the last item."""


class _Failure:
    """Queued instead of further items when the iterator raised."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class Prefetcher(Generic[T]):
    """Iterates ``items`` in a daemon thread, ``depth`` items ahead of the consumer.

    Use as a context manager (or call ``close()``); iterate it once.
    """

    def __init__(self, items: Iterable[T], *, depth: int = DEFAULT_DEPTH, name: str = "streetwatch-prefetch") -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self._items = items
        self._queue: queue.Queue[T | _End | _Failure] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name=name, daemon=True)
        self._consumed = False

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def __enter__(self) -> Prefetcher[T]:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> None:
        """Start the producer (idempotent; a closed Prefetcher stays closed)."""
        if self._thread.ident is None and not self._stop.is_set():
            self._thread.start()

    def __iter__(self) -> Iterator[T]:
        if self._consumed:
            raise RuntimeError("a Prefetcher can be iterated only once")
        self._consumed = True
        if self._stop.is_set():
            raise RuntimeError("this Prefetcher was closed")
        self.start()
        while True:
            item = self._queue.get()
            if isinstance(item, _End):
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item

    def close(self) -> None:
        """Stop the producer and wait for it to finish (it closes its iterator first)."""
        self._stop.set()
        while self._thread.is_alive():
            # Empty the queue so that a producer blocked in put() wakes up and sees the stop.
            try:
                while True:
                    self._queue.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(timeout=_STOP_POLL_S)

    def _produce(self) -> None:
        iterator = iter(self._items)
        try:
            for item in iterator:
                if not self._put(item):
                    return
            self._put(_End())
        except BaseException as error:  # everything, so that the consumer never waits forever
            self._put(_Failure(error))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                # A generator stopped early runs its ``finally`` here (e.g. closes the container).
                close()

    def _put(self, item: T | _End | _Failure) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_STOP_POLL_S)
                return True
            except queue.Full:
                continue
        return False
