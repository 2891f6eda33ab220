"""Argument checks for the ``deepgrad`` command line: argparse ``type=`` functions.

Each function turns one command-line string into a value or raises
``argparse.ArgumentTypeError`` with a message that names the rule and the value given; the CLI
prints it as ``deepgrad: error: argument --lr: must be > 0, got '-1'`` and exits with status 2.
:class:`UsageError` is what the command's handlers raise for the same kind of mistake found
later (a bad combination of options, bad data).
"""

from __future__ import annotations

import argparse
import math

FULL_BATCH = "full"


class UsageError(Exception):
    """Bad usage or bad data: reported as one line ``deepgrad: error: ...``, exit status 2."""


def _number(text: str, kind: type) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer > 0 (epochs, sample counts)."""
    value = _number(text, int)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0 (seeds)."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (learning rates)."""
    value = _number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0 (weight decay)."""
    value = _number(text, float)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def momentum(text: str) -> float:
    """A momentum factor in [0, 1) (1 or more makes the momentum buffer grow without bound)."""
    value = _number(text, float)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text!r}")
    return value


def fraction(text: str) -> float:
    """A fraction in [0, 1) (the share of training data held out; 0 holds out nothing)."""
    value = _number(text, float)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1), got {text!r}")
    return value


def batch_size(text: str) -> int | str:
    """A positive integer, or ``full`` for full-batch training (the whole training set)."""
    if text.strip().lower() == FULL_BATCH:
        return FULL_BATCH
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer or '{FULL_BATCH}', got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(
            f"must be a positive integer or '{FULL_BATCH}', got {text!r}")
    return value


def open_fraction(text: str) -> float:
    """A number strictly between 0 and 1 (a factor that reduces the learning rate)."""
    value = _number(text, float)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {text!r}")
    return value


def _int_list(text: str, what: str) -> list[int]:
    parts = [part.strip() for part in text.replace("x", ",").split(",")]
    try:
        return [int(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


def shape(text: str) -> tuple[int, ...]:
    """A sample shape without the batch dimension: positive integers, e.g. ``1,28,28``."""
    dims = _int_list(text, "comma-separated positive integers such as 1,28,28")
    if any(d <= 0 for d in dims):
        raise argparse.ArgumentTypeError(f"every size must be a positive integer, got {text!r}")
    return tuple(dims)


def _int_or_pair(text: str, minimum: int) -> int | tuple[int, int]:
    values = _int_list(text, "an integer or a pair H,W")
    rule = "> 0" if minimum == 1 else f">= {minimum}"
    if len(values) > 2:
        raise argparse.ArgumentTypeError(f"expected an integer or a pair H,W, got {text!r}")
    if any(v < minimum for v in values):
        raise argparse.ArgumentTypeError(f"must be {rule}, got {text!r}")
    return values[0] if len(values) == 1 else (values[0], values[1])


def positive_int_or_pair(text: str) -> int | tuple[int, int]:
    """A positive integer or a pair ``H,W`` of them (kernel size, stride, dilation)."""
    return _int_or_pair(text, 1)


def non_negative_int_or_pair(text: str) -> int | tuple[int, int]:
    """An integer >= 0 or a pair ``H,W`` of them (padding)."""
    return _int_or_pair(text, 0)
