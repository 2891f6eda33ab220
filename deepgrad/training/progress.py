"""Progress reporting for ``fit``: a tqdm bar on a terminal, one plain line per epoch otherwise."""

from __future__ import annotations

import sys
from collections.abc import Callable

from deepgrad.training.callbacks import Callback, FitState


def _is_tty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def format_record(record: dict, epochs: int) -> str:
    """One line summarising an epoch record of ``fit``'s history."""
    width = len(str(epochs))
    parts = [f"epoch {record['epoch']:>{width}}/{epochs}",
             f"train_loss {record['train_loss']:.4f}"]
    if record.get("train_acc") is not None:
        parts.append(f"train_acc {record['train_acc']:.4f}")
    if record.get("val_loss") is not None:
        parts.append(f"val_loss {record['val_loss']:.4f}")
    if record.get("val_acc") is not None:
        parts.append(f"val_acc {record['val_acc']:.4f}")
    parts.append(f"lr {record['lr']:.4g}")
    parts.append(f"{record['seconds']:.1f}s")
    return "  ".join(parts)


class ProgressLogger(Callback):
    """Report training progress: a per-epoch tqdm bar (terminal only) and a line per epoch.

    Args:
        log: called with each epoch's summary line (``print`` by default).
        bar: show a tqdm progress bar on stderr during each epoch. None (default): only when
            both stdout and stderr are terminals, so logs redirected to a file stay plain
            text, one line per epoch.
    """

    def __init__(self, log: Callable[[str], object] = print, bar: bool | None = None):
        self.log = log
        self.bar = bar
        self._pbar = None

    def on_train_begin(self, state: FitState) -> None:
        if self.bar is None:
            self.bar = _is_tty(sys.stdout) and _is_tty(sys.stderr)

    def on_epoch_begin(self, state: FitState) -> None:
        if self.bar:
            from tqdm import tqdm

            self._pbar = tqdm(total=state.num_batches, initial=state.batch,
                              desc=f"epoch {state.epoch}/{state.epochs}", unit="batch",
                              leave=False, file=sys.stderr, dynamic_ncols=True)

    def on_batch_end(self, state: FitState) -> None:
        if self._pbar is not None:
            # NOTE: refresh=False: tqdm redraws at most every mininterval anyway.
            self._pbar.set_postfix_str(f"loss {state.batch_loss:.4f}", refresh=False)
            self._pbar.update(1)

    def on_epoch_end(self, state: FitState) -> None:
        self._close()
        self.log(format_record(state.history[-1], state.epochs))

    def on_train_end(self, state: FitState) -> None:
        self._close()

    def _close(self) -> None:
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None
