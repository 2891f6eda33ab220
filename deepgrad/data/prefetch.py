"""PrefetchLoader: prepare the next batches in a background thread while the current one trains.

Gathering a batch (fancy indexing, dtype conversion, vectorised augmentation) is NumPy work
that releases the GIL, so it overlaps with the training step's own NumPy work. The wrapped
loader is iterated by one worker thread that fills a bounded queue; the consumer gets exactly
the wrapped loader's batches in the same order.

Reproducibility: the first batch of each pass is fetched in the calling thread, so a
DataLoader that shuffles with the *global* generator draws its epoch seed at the same point of
the program as without prefetching. Later batches are produced concurrently with the training
step: a transform that draws from the global generator would interleave with the model's
draws (dropout) in an order that varies from run to run, so give random transforms and the
loader their own ``seed``/``generator`` when prefetching.

PARITY: PyTorch overlaps loading with training through ``num_workers`` processes; one thread
is enough here because NumPy releases the GIL in its copies.
"""

from __future__ import annotations

import numbers
import queue
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

_BATCH, _DONE, _ERROR = "batch", "done", "error"


class PrefetchLoader:
    """Wrap a loader so that up to ``depth`` batches are prepared ahead in a thread.

    Args:
        loader: any iterable of batches with ``len()``, typically a
            :class:`~deepgrad.data.DataLoader`.
        depth: how many batches may wait ready in the queue (>= 1).

    The worker thread is stopped and joined when an iteration ends, is left early (``break``)
    or is abandoned because the consumer raised (the iterator is closed when it is garbage
    collected, at once in CPython, or explicitly with ``close()``). An exception raised while
    producing a batch is re-raised in the consumer at the point where that batch was due.

    :meth:`state_dict` describes the position of the *consumer* (the batches already handed
    out), not of the worker, which may have run ahead, so a checkpoint resumes with the first
    batch the training loop has not seen.

    Example:
        >>> for xb, yb in PrefetchLoader(DataLoader(ds, batch_size=128, seed=0)): ...
    """

    def __init__(self, loader: Iterable, depth: int = 2):
        if isinstance(depth, bool) or not isinstance(depth, numbers.Integral) or depth < 1:
            raise ValueError(f"PrefetchLoader: depth must be an int >= 1, got {depth!r}")
        self.loader = loader
        self.depth = int(depth)
        self._state: dict | None = None  # wrapped loader's state after the last batch handed out

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    @property
    def dataset(self) -> Any:
        """The wrapped loader's dataset."""
        return self.loader.dataset  # type: ignore[attr-defined]

    @property
    def batch_size(self) -> Any:
        """The wrapped loader's batch size."""
        return self.loader.batch_size  # type: ignore[attr-defined]

    def _snapshot(self) -> dict | None:
        state_dict = getattr(self.loader, "state_dict", None)
        return state_dict() if callable(state_dict) else None

    def __iter__(self) -> Iterator[Any]:
        it = iter(self.loader)
        try:
            first = next(it)
        except StopIteration:
            self._state = None
            return
        first_state = self._snapshot()
        q: queue.Queue = queue.Queue(maxsize=self.depth)
        stop = threading.Event()
        worker = threading.Thread(target=self._work, args=(it, q, stop), daemon=True,
                                  name="deepgrad-prefetch")
        worker.start()
        try:
            self._state = first_state
            yield first
            while True:
                kind, item, state = q.get()
                if kind == _BATCH:
                    self._state = state
                    yield item
                elif kind == _DONE:
                    self._state = None
                    return
                else:
                    raise item
        finally:
            stop.set()
            # NOTE: emptying the queue unblocks a worker waiting in put(); after stop is set
            # it puts at most one more item, which always fits, and then returns.
            while True:
                try:
                    q.get_nowait()
                except queue.Empty:
                    break
            worker.join()

    def _work(self, it: Iterator[Any], q: queue.Queue, stop: threading.Event) -> None:
        """Worker thread: pull batches from ``it`` into ``q`` until done, failed or stopped."""
        try:
            while not stop.is_set():
                try:
                    batch = next(it)
                except StopIteration:
                    q.put((_DONE, None, None))
                    return
                q.put((_BATCH, batch, self._snapshot()))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            q.put((_ERROR, exc, None))
        finally:
            close = getattr(it, "close", None)
            if callable(close):
                close()

    def state_dict(self) -> dict:
        """The wrapped loader's state as of the last batch handed to the consumer.

        Raises:
            AttributeError: if the wrapped loader has no ``state_dict``.
        """
        if self._state is not None:
            return dict(self._state)
        return self.loader.state_dict()  # type: ignore[attr-defined]

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the wrapped loader's state (see ``DataLoader.load_state_dict``)."""
        self.loader.load_state_dict(state)  # type: ignore[attr-defined]
        self._state = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.loader!r}, depth={self.depth})"
