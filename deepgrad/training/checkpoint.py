"""Checkpoints that resume training exactly, and the :class:`ModelCheckpoint` callback.

A checkpoint is one ``.npz`` file, written atomically (temporary file + ``os.replace``) and
read without pickle:

* ``model/<key>``: the model's ``state_dict`` arrays (so ``{k[6:]: v for k, v in
  np.load(path).items() if k.startswith("model/")}`` are the weights);
* ``state/<n>``: every other array (optimizer buffers, a callback's best weights);
* ``checkpoint.json``: a UTF-8 JSON document (stored as a uint8 array) with the format name
  and version, the optimizer's ``state_dict``, the ``state_dict`` of every stateful callback
  (a schedule, early stopping, ...), the global RNG state, the training loader's
  ``state_dict`` (epoch, position in the epoch, generator), the progress (epoch, batch, step
  counters, the history so far, the running sums of the epoch in progress) and a free
  ``config`` (the CLI stores its options there). Arrays in it are references
  ``{"__ndarray__": "state/3"}``; tuples, dicts with non-string keys, Tensors and NumPy
  scalars are tagged likewise, so every value comes back with its type.

``fit(..., resume_from=path)`` restores all of it and continues mid-epoch if need be; with
the same data and settings the weights are bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepgrad._random import get_rng_state, set_rng_state
from deepgrad.tensor import Tensor
from deepgrad.training.callbacks import (
    Callback,
    FitState,
    is_improvement,
    monitored_value,
    resolve_mode,
    stateful_callbacks,
)
from deepgrad.training.io import atomic_write

FORMAT = "deepgrad-checkpoint"
VERSION = 1
_META = "checkpoint.json"
_TAGS = ("__ndarray__", "__tensor__", "__tuple__", "__dict__", "__scalar__")


class _Encoder:
    """Turn nested states into JSON-able values, collecting their arrays."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}

    def _store(self, a: np.ndarray, where: str) -> str:
        if a.dtype.hasobject:
            raise TypeError(f"cannot save {where} in a checkpoint: an object array")
        key = f"state/{len(self.arrays)}"
        self.arrays[key] = np.ascontiguousarray(a)
        return key

    def encode(self, obj: Any, where: str) -> Any:
        if isinstance(obj, Tensor):
            return {"__tensor__": self._store(obj.data, where),
                    "requires_grad": bool(obj.requires_grad)}
        if isinstance(obj, np.ndarray):
            return {"__ndarray__": self._store(obj, where)}
        if isinstance(obj, np.generic):  # before float: np.float64 is a float
            return {"__scalar__": obj.dtype.str, "value": obj.item()}
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        if isinstance(obj, tuple):
            return {"__tuple__": [self.encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]}
        if isinstance(obj, list):
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        if isinstance(obj, dict):
            if all(isinstance(k, str) for k in obj) and not any(t in obj for t in _TAGS):
                return {k: self.encode(v, f"{where}.{k}") for k, v in obj.items()}
            return {"__dict__": [[self.encode(k, f"{where} key"), self.encode(v, f"{where}.{k}")]
                                 for k, v in obj.items()]}
        raise TypeError(f"cannot save {where} in a checkpoint: a {type(obj).__name__} is not "
                        "an array, number, string, list or dict")


def _decode(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, arrays) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__ndarray__" in obj:
        return arrays[obj["__ndarray__"]]
    if "__tensor__" in obj:
        t = Tensor._wrap(arrays[obj["__tensor__"]])
        t.requires_grad = bool(obj["requires_grad"])
        return t
    if "__scalar__" in obj:
        return np.dtype(obj["__scalar__"]).type(obj["value"])
    if "__tuple__" in obj:
        return tuple(_decode(v, arrays) for v in obj["__tuple__"])
    if "__dict__" in obj:
        return {_decode(k, arrays): _decode(v, arrays) for k, v in obj["__dict__"]}
    return {k: _decode(v, arrays) for k, v in obj.items()}


@dataclass
class Checkpoint:
    """The contents of a checkpoint file (see the module docstring).

    Attributes:
        model: the model's state_dict, as arrays.
        optimizer: the optimizer's state_dict.
        callbacks: ``[class name, state_dict]`` of each stateful callback, in order.
        rng: the global generator's state (``deepgrad._random.get_rng_state``).
        loader: the training loader's ``state_dict``, or None.
        progress: ``epoch``, ``batch``, ``num_batches``, ``step``, ``history``,
            ``epoch_totals``, ``stop_training`` and ``seconds`` (training time so far).
        config: whatever the caller stored (JSON-able values and arrays), or None.
        path: the file it was read from, if any.
    """

    model: dict
    optimizer: dict
    callbacks: list
    rng: dict
    loader: dict | None
    progress: dict
    config: Any = None
    path: Path | None = None

    @property
    def epochs_done(self) -> int:
        """Number of finished epochs (records in the history)."""
        return len(self.progress["history"])

    @property
    def mid_epoch(self) -> bool:
        """True when saved inside an epoch (after ``progress["batch"]`` of its batches)."""
        p = self.progress
        return p["epoch"] > len(p["history"]) and p["batch"] > 0


def make_checkpoint(state: FitState, config: Any = None) -> Checkpoint:
    """A snapshot (copies) of everything needed to resume the run of ``state``.

    Raises:
        ValueError: mid-epoch, when the training loader has no ``state_dict``.
    """
    loader = state.train_loader
    has_state = callable(getattr(loader, "state_dict", None))
    mid = state.mid_epoch
    if mid and not has_state:
        raise ValueError("cannot checkpoint in the middle of an epoch: the training loader "
                         f"({type(loader).__name__}) has no state_dict()")
    totals = dict(state.epoch_totals)
    if mid:
        totals["seconds"] = totals.get("seconds", 0.0) + (time.perf_counter() - state.epoch_start)
    return Checkpoint(
        model={k: np.array(t.data, copy=True) for k, t in state.model.state_dict().items()},
        optimizer=state.optimizer.state_dict(),
        callbacks=[[type(cb).__name__, cb.state_dict()]
                   for cb in stateful_callbacks(state.callbacks)],
        rng=get_rng_state(),
        loader=loader.state_dict() if has_state else None,
        progress={"epoch": state.epoch, "batch": state.batch, "num_batches": state.num_batches,
                  "step": state.step, "history": [dict(h) for h in state.history],
                  "epoch_totals": totals, "stop_training": state.stop_training,
                  "seconds": state.train_seconds()},
        config=config,
    )


def write_checkpoint(path: str | os.PathLike, ckpt: Checkpoint) -> Path:
    """Write ``ckpt`` to ``path`` atomically (the directory must exist)."""
    enc = _Encoder()
    meta = {
        "format": FORMAT, "version": VERSION, "model": list(ckpt.model),
        "optimizer": enc.encode(ckpt.optimizer, "the optimizer state"),
        "callbacks": [[name, enc.encode(s, f"the state of {name}")] for name, s in ckpt.callbacks],
        "rng": enc.encode(ckpt.rng, "the RNG state"),
        "loader": enc.encode(ckpt.loader, "the loader state"),
        "progress": enc.encode(ckpt.progress, "the progress"),
        "config": enc.encode(ckpt.config, "config"),
    }
    blob = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    arrays = {f"model/{k}": np.asarray(v) for k, v in ckpt.model.items()}
    arrays.update(enc.arrays)
    arrays[_META] = blob
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def save_checkpoint(path: str | os.PathLike, state: FitState, config: Any = None) -> Path:
    """Write a resumable checkpoint of the run of ``state`` to ``path``, atomically.

    Args:
        path: the file (conventionally ``.npz``); its directory must exist.
        state: the ``FitState`` seen by a callback.
        config: anything JSON-able (arrays allowed) to store alongside, e.g. the options
            that rebuild the model and optimizer.
    """
    return write_checkpoint(path, make_checkpoint(state, config))


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` (no pickle involved).

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if it is not a readable deepgrad checkpoint (the file named).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
        if _META not in arrays:
            raise ValueError(f"no {_META} entry")
        meta = json.loads(arrays.pop(_META).tobytes().decode("utf-8"))
        if meta.get("format") != FORMAT:
            raise ValueError(f"format is {meta.get('format')!r}, not {FORMAT!r}")
        if meta.get("version") != VERSION:
            raise ValueError(f"version {meta.get('version')!r}; this deepgrad reads {VERSION}")
        ckpt = Checkpoint(
            model={k: arrays[f"model/{k}"] for k in meta["model"]},
            optimizer=_decode(meta["optimizer"], arrays),
            callbacks=[[name, _decode(s, arrays)] for name, s in meta["callbacks"]],
            rng=_decode(meta["rng"], arrays),
            loader=_decode(meta["loader"], arrays),
            progress=_decode(meta["progress"], arrays),
            config=_decode(meta["config"], arrays),
            path=path,
        )
        for key in ("epoch", "batch", "num_batches", "step", "history", "epoch_totals",
                    "stop_training", "seconds"):
            ckpt.progress[key]  # noqa: B018 - a KeyError names a missing entry
    except Exception as exc:  # NOTE: np.load and json raise many types for garbage input
        raise ValueError(f"{path}: not a readable deepgrad checkpoint "
                         f"({type(exc).__name__}: {exc})") from None
    return ckpt


def restore_checkpoint(ckpt: Checkpoint, state: FitState) -> None:
    """Load ``ckpt`` into the run of ``state``: model, optimizer, stateful callbacks, training
    loader, global RNG, history and counters (``fit(resume_from=...)`` calls this).

    Raises:
        ValueError: if the checkpoint does not fit (other model or optimizer, other stateful
            callbacks, a mid-epoch checkpoint for a loader without ``load_state_dict`` or
            with another number of batches).
    """
    where = str(ckpt.path) if ckpt.path is not None else "checkpoint"
    try:
        state.model.load_state_dict(ckpt.model)
        state.optimizer.load_state_dict(ckpt.optimizer)
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{where}: does not fit the model and optimizer: "
                         f"{exc.args[0] if exc.args else exc}") from None
    stateful = stateful_callbacks(state.callbacks)
    names = [type(cb).__name__ for cb in stateful]
    saved = [name for name, _ in ckpt.callbacks]
    if names != saved:
        raise ValueError(f"{where}: saved with the stateful callbacks {saved}, but fit has "
                         f"{names}")
    for cb, (_, s) in zip(stateful, ckpt.callbacks):
        cb.load_state_dict(s)
    progress = ckpt.progress
    loader = state.train_loader
    if ckpt.mid_epoch:
        if not callable(getattr(loader, "load_state_dict", None)) or ckpt.loader is None:
            raise ValueError(f"{where}: saved mid-epoch, but the training loader's position "
                             "cannot be restored (no load_state_dict or no saved state)")
        if state.num_batches and progress["num_batches"] != state.num_batches:
            raise ValueError(f"{where}: saved mid-epoch with {progress['num_batches']} batches "
                             f"per epoch, the loader has {state.num_batches}")
    if ckpt.loader is not None and callable(getattr(loader, "load_state_dict", None)):
        loader.load_state_dict(ckpt.loader)
    set_rng_state(ckpt.rng)
    state.epoch, state.batch = int(progress["epoch"]), int(progress["batch"])
    state.step = int(progress["step"])
    state.history = [dict(h) for h in progress["history"]]
    state.epoch_totals = dict(progress["epoch_totals"])
    state.stop_training = bool(progress["stop_training"])
    state.seconds_before = float(progress["seconds"])


class ModelCheckpoint(Callback):
    """Save resumable checkpoints during ``fit``: at the end of epochs and on interruption.

    The file ``dirpath/filename`` always holds the newest checkpoint; resume with
    ``fit(..., resume_from=that path)`` (or ``deepgrad train --resume RUN_DIR``).

    Args:
        dirpath: the directory (created if missing).
        every_epoch: save at the end of every epoch; if False, only at the end of training
            and on interruption.
        save_best_only: at the end of an epoch, save only if ``monitor`` improved (the file
            then holds the best epoch, and interruptions are not saved over it).
        monitor, mode: the history key and direction for ``save_best_only`` (``mode="auto"``:
            max for accuracies, else min).
        keep_last: also keep a numbered copy of each of the last ``keep_last`` saves
            (``checkpoint-epoch0003.npz``; ``...-epoch0003-batch00017.npz`` mid-epoch), hard
            links where the file system allows; older copies it made are deleted. 0: none.
        filename: name of the newest checkpoint (default ``checkpoint.npz``).
        config: stored in every checkpoint (e.g. the options that rebuild the run).

    Attributes:
        last_saved: ``{"path", "epoch", "batch", "num_batches", "mid_epoch"}`` of the last save
            in this session, or None.

    Interruptions: when ``fit`` stops on ``state.interrupt`` (``GracefulInterrupt``, Ctrl-C)
    the state is at a step boundary and is saved in ``on_train_end`` (mid-epoch when the loader
    has a ``state_dict``, as ``DataLoader`` does). Runs that end with an error are not saved.

    ``fit`` runs this callback after the others (``runs_last``), so that what it saves at
    the end of an epoch includes their end-of-epoch changes (a schedule's step, early
    stopping's counters).
    """

    runs_last = True

    def __init__(self, dirpath: str | os.PathLike, every_epoch: bool = True,
                 save_best_only: bool = False, monitor: str = "val_loss", mode: str = "auto",
                 keep_last: int = 0, filename: str = "checkpoint.npz", config: Any = None):
        if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 0:
            raise ValueError(f"keep_last must be an int >= 0, got {keep_last!r}")
        if not filename or Path(filename).name != filename:
            raise ValueError(f"filename must be a plain file name, got {filename!r}")
        self.dirpath = Path(dirpath)
        self.every_epoch = bool(every_epoch)
        self.save_best_only = bool(save_best_only)
        self.monitor = monitor
        self.mode = resolve_mode(monitor, mode)
        self.keep_last = keep_last
        self.filename = filename
        self.config = config
        self.best: float | None = None
        self.kept: list[str] = []
        self.last_saved: dict | None = None
        self._saved_step: int | None = None

    @property
    def path(self) -> Path:
        """The newest checkpoint's path."""
        return self.dirpath / self.filename

    def on_train_begin(self, state: FitState) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)

    def on_epoch_end(self, state: FitState) -> None:
        if not self.every_epoch:
            return
        if self.save_best_only:
            value = monitored_value(state, self.monitor, "ModelCheckpoint")
            if not is_improvement(value, self.best, self.mode, 0.0):
                return
            self.best = value
        self.save(state)

    def on_train_end(self, state: FitState) -> None:
        if self._saved_step == state.step and not state.mid_epoch:
            return  # this very state was saved at the end of the epoch
        if state.interrupted and not self.save_best_only:
            if not state.mid_epoch or callable(getattr(state.train_loader, "state_dict", None)):
                self.save(state)
        elif state.completed and not self.every_epoch:
            self.save(state)

    def save(self, state: FitState) -> Path:
        """Save a checkpoint of ``state`` now (and a numbered copy with ``keep_last``)."""
        numbered = None
        if self.keep_last:
            stem, suffix = Path(self.filename).stem, Path(self.filename).suffix
            numbered = f"{stem}-epoch{state.epoch:04d}" + (
                f"-batch{state.batch:05d}" if state.mid_epoch else "") + suffix
            if numbered not in self.kept:
                self.kept.append(numbered)
        dropped = self.kept[:-self.keep_last] if self.keep_last else []
        self.kept = self.kept[len(dropped):]
        write_checkpoint(self.path, make_checkpoint(state, self.config))
        if numbered is not None:
            _link_or_copy(self.path, self.dirpath / numbered)
        for name in dropped:
            (self.dirpath / name).unlink(missing_ok=True)
        self._saved_step = state.step
        self.last_saved = {"path": str(self.path), "epoch": state.epoch, "batch": state.batch,
                           "num_batches": state.num_batches, "mid_epoch": state.mid_epoch}
        return self.path

    def state_dict(self) -> dict:
        """The best monitored value and the numbered copies kept: for checkpoints."""
        return {"best": self.best, "kept": list(self.kept)}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` saved."""
        self.best = state["best"]
        self.kept = list(state["kept"])


def _link_or_copy(src: Path, dst: Path) -> None:
    """Make ``dst`` hold the contents of ``src`` atomically: a hard link, else a copy."""
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
