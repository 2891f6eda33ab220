"""Grad mode: whether operations record a graph for backpropagation.

Grad mode is separate from a module's train/eval mode (DESIGN rule 4).
"""

from __future__ import annotations

import functools

_enabled = True


def is_grad_enabled() -> bool:
    """Return True when operations record the graph."""
    return _enabled


def set_grad_enabled_flag(mode: bool) -> bool:
    """Set grad mode and return the previous value (low-level; prefer the context managers)."""
    global _enabled
    prev = _enabled
    _enabled = bool(mode)
    return prev


class _GradModeContext:
    _mode: bool

    def __enter__(self):
        self._prev = set_grad_enabled_flag(self._mode)
        return self

    def __exit__(self, *exc):
        set_grad_enabled_flag(self._prev)
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return func(*args, **kwargs)

        return wrapper


class no_grad(_GradModeContext):
    """Context manager (and decorator) that stops graph recording, as ``torch.no_grad``."""

    _mode = False


class enable_grad(_GradModeContext):
    """Context manager (and decorator) that turns graph recording back on."""

    _mode = True


class set_grad_enabled(_GradModeContext):
    """Context manager that sets grad mode to ``mode``; also takes effect when called plainly."""

    def __init__(self, mode: bool):
        self._mode = bool(mode)
        self._prev = set_grad_enabled_flag(self._mode)

    def __enter__(self):
        return self

    def __call__(self, func):
        # PARITY: as torch, usable as a decorator: undo the mode set by __init__ and apply it
        # only while ``func`` runs.
        set_grad_enabled_flag(self._prev)
        mode = self._mode

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            prev = set_grad_enabled_flag(mode)
            try:
                return func(*args, **kwargs)
            finally:
                set_grad_enabled_flag(prev)

        return wrapper
