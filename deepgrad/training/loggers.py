"""Loggers: callbacks that write one row per epoch of ``fit``'s history to a file.

:class:`CSVLogger` and :class:`JSONLinesLogger` flush every row as soon as its epoch ends, so
a run that is killed keeps the rows of its finished epochs. A resumed run (``fit(...,
resume_from=...)``) rewrites the file from the restored history first, so the log always
matches the history, without duplicated or missing epochs. :class:`TensorBoardLogger` writes
TensorBoard event files when an event writer is installed (the optional ``tensorboardX``
package, or ``tensorboard``'s own writer).

PARITY: Keras' ``CSVLogger``; ``TensorBoardLogger`` as ``pytorch_lightning``'s.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from pathlib import Path

from deepgrad.training.callbacks import Callback, FitState


class _FileLogger(Callback):
    """Writes each epoch record to a text file, flushed per epoch."""

    def __init__(self, path: str | os.PathLike, append: bool = False):
        self.path = Path(path)
        self.append = bool(append)
        self._file = None

    def on_train_begin(self, state: FitState) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.append:
            self._file = open(self.path, "a", encoding="utf-8", newline="")
            self._start(existing=self.path.stat().st_size > 0)
        else:
            # NOTE: a resumed run starts with its earlier epochs: rewrite them, so the file
            # matches the history however the previous session ended.
            self._file = open(self.path, "w", encoding="utf-8", newline="")
            self._start(existing=False)
            for record in state.history:
                self._row(record)
        self._file.flush()

    def on_epoch_end(self, state: FitState) -> None:
        if self._file is None:
            return
        self._row(state.history[-1])
        self._file.flush()

    def on_train_end(self, state: FitState) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _start(self, existing: bool) -> None:
        pass

    def _row(self, record: dict) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class CSVLogger(_FileLogger):
    """Write the history to a CSV file: a header, then one row per epoch.

    The columns are the keys of the first record (``epoch``, ``train_loss``, ``train_acc``,
    ``val_loss``, ``val_acc``, ``lr``, ``seconds``); a missing value (None) is an empty field.

    Args:
        path: the CSV file (its directory is created if missing).
        append: append to an existing file (keeping its header) instead of rewriting it.
    """

    def _start(self, existing: bool) -> None:
        self._fields = None
        if existing:
            with open(self.path, encoding="utf-8", newline="") as f:
                header = next(csv.reader(f), None)
            self._fields = header or None

    def _row(self, record: dict) -> None:
        if self._fields is None:
            self._fields = list(record)
            csv.writer(self._file).writerow(self._fields)
        csv.DictWriter(self._file, self._fields, extrasaction="ignore").writerow(record)


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None  # NOTE: NaN and inf are not JSON
    return value


class JSONLinesLogger(_FileLogger):
    """Write the history as JSON Lines: one JSON object per epoch and line.

    Non-finite floats are written as null (NaN and inf are not JSON).

    Args:
        path: the ``.jsonl`` file (its directory is created if missing).
        append: append to an existing file instead of rewriting it.
    """

    def _row(self, record: dict) -> None:
        row = {k: _json_value(v) for k, v in record.items()}
        self._file.write(json.dumps(row, allow_nan=False) + "\n")


def _event_writer(log_dir: str):
    """An object with ``add_scalar(tag, value, step)``, ``flush()`` and ``close()``."""
    try:
        from tensorboardX import SummaryWriter

        return SummaryWriter(log_dir)
    except ImportError:
        pass
    try:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
    except ImportError as exc:
        raise ImportError("TensorBoardLogger needs a TensorBoard event writer: pip install "
                          f"tensorboardX (or pip install tensorboard); importing one failed: "
                          f"{exc}") from None
    return _TensorBoardWriter(EventFileWriter(log_dir), Event, Summary)


class _TensorBoardWriter:
    """``add_scalar`` on top of ``tensorboard``'s own event file writer."""

    def __init__(self, writer, event, summary):
        self._writer, self._event, self._summary = writer, event, summary

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        summary = self._summary(value=[self._summary.Value(tag=tag, simple_value=value)])
        self._writer.add_event(self._event(wall_time=time.time(), step=step, summary=summary))

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class TensorBoardLogger(Callback):
    """Write each epoch's numbers as TensorBoard scalars (``train_loss``, ``val_acc``, ``lr``,
    ...; the step is the epoch), flushed per epoch.

    Needs ``tensorboardX`` or ``tensorboard`` (optional extras, not dependencies of deepgrad;
    ``torch.utils.tensorboard`` is never used). A resumed run appends the epochs it trains to
    the same ``log_dir``, where the earlier ones already are.

    Args:
        log_dir: directory of the event files (created if missing).

    Raises:
        ImportError: with the ``pip install`` command, when no event writer is installed.
    """

    def __init__(self, log_dir: str | os.PathLike):
        self.log_dir = Path(log_dir)
        self._check_importable()  # NOTE: fail when constructed, not after the first epoch
        self._writer = None

    @staticmethod
    def _check_importable() -> None:
        import importlib.util

        if importlib.util.find_spec("tensorboardX") is None \
                and importlib.util.find_spec("tensorboard") is None:
            raise ImportError("TensorBoardLogger needs a TensorBoard event writer: "
                              "pip install tensorboardX (or pip install tensorboard)")

    def on_train_begin(self, state: FitState) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._writer = _event_writer(str(self.log_dir))

    def on_epoch_end(self, state: FitState) -> None:
        record = state.history[-1]
        for key, value in record.items():
            if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self._writer.add_scalar(key, float(value), record["epoch"])
        self._writer.flush()

    def on_train_end(self, state: FitState) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
