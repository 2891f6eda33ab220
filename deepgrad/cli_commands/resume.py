"""Checkpoints and ``--resume`` of ``deepgrad train``.

``deepgrad train`` saves ``RUN_DIR/checkpoint.npz`` at the end of every epoch and, on Ctrl-C,
at the step where it stopped (mid-epoch: the loader's position goes with it). The checkpoint's
``config`` holds the resolved options (``cli``), the start time, a fingerprint of the training
data and the times of earlier resumptions.

``deepgrad train --resume RUN_DIR`` rebuilds the run from that config and continues it
exactly: with the same data, the final weights, history and test accuracy are bit-identical to
a run that was never interrupted. The resumed run takes its options from the checkpoint; on
the command line it accepts only ``--epochs`` (to train longer than first asked: not for the
schedules sized by the run's length, cosine and onecycle), ``--quiet``, ``--data-dir``,
``--download`` and, for an ``.npz`` data set that moved, ``--dataset NEW_PATH``; any other
option that differs from the saved one is refused (exit 2). The training data must be the
same (shapes and SHA-256 checked).
``summary.json`` and ``model.npz`` are written only when the run finishes, so a resume that
fails never touches a finished result.
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from deepgrad._cli_validation import UsageError
from deepgrad.training.checkpoint import Checkpoint, ModelCheckpoint, load_checkpoint

CHECKPOINT = "checkpoint.npz"
SUMMARY = "summary.json"
#: options a resumed run may set on the command line
RESUME_OPTIONS = frozenset({"epochs", "quiet", "data_dir", "download"})
#: schedules whose shape is fixed by the number of epochs asked for at the start
LENGTH_SIZED_SCHEDULES = frozenset({"cosine", "onecycle"})


class ResumableInterrupt(KeyboardInterrupt):
    """Ctrl-C with a checkpoint on disk; the message tells how to resume."""


def now() -> str:
    """The current UTC time, ISO format, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def fingerprint(x: np.ndarray, y: np.ndarray) -> dict:
    """Identify the training data: its shapes, dtypes and a SHA-256 of the bytes."""
    h = hashlib.sha256()
    for a in (x, y):
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    return {"samples": int(len(x)), "sha256": h.hexdigest()}


def _option(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _is_file_spec(spec) -> bool:
    spec = str(spec)
    return spec.lower().endswith(".npz") or "/" in spec or "\\" in spec


def _same_file(a, b) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except (OSError, RuntimeError):
        return False


def resumed_args(args: argparse.Namespace, given: set[str]) -> argparse.Namespace:
    """The arguments of the run in ``args.resume``, with the allowed overrides of ``given``.

    Args:
        args: the parsed command line (with ``resume``).
        given: the dests of the options that appear on the command line.

    Returns:
        A namespace as a fresh ``deepgrad train`` would have after resolving its options, plus
        ``resume`` (the run directory) and ``checkpoint`` (the loaded :class:`Checkpoint`).

    Raises:
        UsageError: for a missing or unreadable checkpoint, a conflicting option, or a run
            that has nothing left to do.
    """
    run = Path(args.resume)
    if not run.is_dir():
        raise UsageError(f"argument --resume: no run directory {run}")
    path = run / CHECKPOINT
    if not path.is_file():
        raise UsageError(f"argument --resume: {run} has no {CHECKPOINT} (not a run of deepgrad "
                         "train, or stopped before it could save one)")
    try:
        ckpt = load_checkpoint(path)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    config = ckpt.config
    if not isinstance(config, dict) or not isinstance(config.get("cli"), dict) \
            or "data" not in config:
        raise UsageError(f"{path}: not a checkpoint of deepgrad train (no saved options)")
    saved = config["cli"]
    for dest in sorted(given - RESUME_OPTIONS - {"resume", "command"}):
        value = getattr(args, dest)
        if dest == "out":
            if not _same_file(value, run):
                raise UsageError(f"argument --out: a resumed run stays in its directory {run}; "
                                 "drop --out")
            continue
        if dest == "dataset" and _is_file_spec(value) and _is_file_spec(saved["dataset"]):
            # NOTE: an .npz file that moved; check_data makes sure it holds the same data
            config["npz_file"] = str(Path(value).resolve())
            continue
        if dest not in saved or value != saved[dest]:
            raise UsageError(f"argument {_option(dest)}: --resume continues the run with its "
                             f"saved options ({_option(dest)} {saved.get(dest)}); drop "
                             f"{_option(dest)}")
    new = argparse.Namespace(**saved)
    for dest in given & RESUME_OPTIONS:
        setattr(new, dest, getattr(args, dest))
    if isinstance(new.data_dir, str):
        new.data_dir = Path(new.data_dir)
    new.handler, new.resume, new.checkpoint = args.handler, run, ckpt
    done = ckpt.epochs_done
    if new.epochs != saved["epochs"]:
        if new.epochs < done:
            raise UsageError(f"argument --epochs: the run has already finished {done} "
                             f"epoch(s)")
        if new.schedule in LENGTH_SIZED_SCHEDULES:
            raise UsageError(f"argument --epochs: the {new.schedule} schedule was sized for "
                             f"{saved['epochs']} epoch(s); a resumed run keeps that length")
    if (done >= new.epochs or ckpt.progress["stop_training"]) and (run / SUMMARY).is_file():
        extend = new.schedule not in LENGTH_SIZED_SCHEDULES
        raise UsageError(f"nothing to resume: {run} has finished its {done} epoch(s) "
                         f"({SUMMARY})" + (f"; pass --epochs N (> {done}) to train on"
                                           if extend else ""))
    return new


def check_data(ckpt: Checkpoint, data: dict) -> None:
    """Refuse to resume on training data other than the run's (exit 2)."""
    if ckpt.config["data"] != data:
        raise UsageError(f"{ckpt.path}: the training data differ from those the run started "
                         f"with ({ckpt.config['data']['samples']} samples, SHA-256 "
                         f"{ckpt.config['data']['sha256'][:12]}...): cannot resume")


def refuse_unfinished(out: Path) -> None:
    """Refuse a fresh run in a directory that holds an unfinished one (its checkpoint would be
    lost)."""
    if (out / CHECKPOINT).is_file() and not (out / SUMMARY).is_file():
        raise UsageError(f"{out} holds an unfinished run ({CHECKPOINT}): resume it with "
                         f"`deepgrad train --resume {shlex.quote(str(out))}`, or pick another "
                         "--out")


def describe(ckpt: Checkpoint) -> str:
    """Where a checkpoint stands, e.g. 'epoch 2 at batch 37/94' or 'after epoch 1'."""
    p = ckpt.progress
    if ckpt.mid_epoch:
        return f"epoch {p['epoch']} at batch {p['batch']}/{p['num_batches']}"
    return f"after epoch {ckpt.epochs_done}" if ckpt.epochs_done else "at the start"


def interrupted(out: Path, saver: ModelCheckpoint) -> KeyboardInterrupt:
    """The exception for Ctrl-C: with the resume command when a checkpoint is on disk."""
    if not (out / CHECKPOINT).is_file():
        return KeyboardInterrupt()
    hint = f"resume with: deepgrad train --resume {shlex.quote(str(out))}"
    last = saver.last_saved
    if last is None:
        return ResumableInterrupt(f"interrupted; the last checkpoint is in {out}; {hint}")
    where = (f"at epoch {last['epoch']}, batch {last['batch']}/{last['num_batches']}"
             if last["mid_epoch"] else f"after epoch {last['epoch']}")
    return ResumableInterrupt(f"interrupted; checkpoint {where} saved in {out}; {hint}")
