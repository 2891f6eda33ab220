"""The one random number generator of deepgrad.

Every random draw in the library (initialisers, dropout, data shuffling when no generator is
given, ``randn``/``rand``) goes through :func:`get_rng`, so ``manual_seed`` makes a whole run
reproducible.
"""

from __future__ import annotations

import numpy as np

_rng = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Seed the global generator and return it."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    global _rng
    _rng = np.random.default_rng(int(seed))
    return _rng


def get_rng() -> np.random.Generator:
    """Return the global generator."""
    return _rng


def get_rng_state() -> dict:
    """Return the global generator's state (a JSON-able dict), for checkpoints."""
    return _rng.bit_generator.state


def set_rng_state(state: dict) -> None:
    """Restore the global generator's state from :func:`get_rng_state`."""
    _rng.bit_generator.state = state
