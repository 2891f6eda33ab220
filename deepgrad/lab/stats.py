"""Statistics over seeds, used by the verdicts."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np


def summarise(values: Iterable[float]) -> dict:
    """Mean, standard deviation (ddof=1, 0 for one value), count, min and max of ``values``.

    Non-finite values count in ``n`` and make the mean/std non-finite (nan) rather than
    being dropped silently; ``min``/``max`` are over all values.
    """
    a = np.asarray(list(values), dtype=np.float64)
    n = int(a.size)
    if n == 0:
        return {"mean": math.nan, "std": math.nan, "n": 0, "min": math.nan, "max": math.nan}
    # NOTE: inf values (e.g. "never reached") make the std nan; that is the documented result,
    # so NumPy's warning about it is silenced.
    with np.errstate(invalid="ignore"):
        std = float(a.std(ddof=1)) if n > 1 else 0.0
    return {"mean": float(a.mean()), "std": std, "n": n, "min": float(a.min()),
            "max": float(a.max())}


def _by_seed(x) -> dict:
    if isinstance(x, Mapping):
        return {k: float(v) for k, v in x.items()}
    return {i: float(v) for i, v in enumerate(x)}


def paired_effect(a_by_seed, b_by_seed) -> dict:
    """Paired differences ``a - b`` over the seeds both have.

    Args:
        a_by_seed, b_by_seed: ``{seed: value}`` dicts, or equal-length sequences paired by
            position.

    Returns:
        ``{"mean_diff", "std_diff", "n", "frac_positive"}``; ``frac_positive`` is the share of
        seeds where ``a > b``.
    """
    a, b = _by_seed(a_by_seed), _by_seed(b_by_seed)
    keys = [k for k in a if k in b]
    d = np.array([a[k] - b[k] for k in keys], dtype=np.float64)
    if d.size == 0:
        return {"mean_diff": math.nan, "std_diff": math.nan, "n": 0, "frac_positive": math.nan}
    return {"mean_diff": float(d.mean()), "std_diff": float(d.std(ddof=1)) if d.size > 1 else 0.0,
            "n": int(d.size), "frac_positive": float(np.mean(d > 0))}


def steps_to_threshold(steps: Sequence[float], values: Sequence[float], threshold: float,
                       below: bool = True) -> float:
    """The first step at which ``values`` reaches ``threshold`` (inf if it never does).

    Args:
        below: True for losses (reach = value <= threshold), False for accuracies (>=).
    """
    for s, v in zip(steps, values):
        if v is None or not math.isfinite(v):
            continue
        if (v <= threshold) if below else (v >= threshold):
            return float(s)
    return math.inf


def area_under(values: Sequence[float]) -> float:
    """Mean of a curve (its area per point): lower for a loss curve that falls sooner."""
    a = np.asarray([v for v in values if v is not None], dtype=np.float64)
    return float(a.mean()) if a.size else math.nan


def finite_or(value: float, default: float) -> float:
    """``value`` if finite, else ``default`` (e.g. replace a diverged loss by a ceiling)."""
    return float(value) if value is not None and math.isfinite(value) else float(default)


def runs_of(runs: Sequence[dict], variant: str) -> list[dict]:
    """The runs of one variant, in seed order."""
    return sorted((r for r in runs if r["variant"] == variant), key=lambda r: r["seed"])


def final_by_seed(runs: Sequence[dict], variant: str, key: str) -> dict:
    """``{seed: run["final"][key]}`` for one variant."""
    return {r["seed"]: float(r["final"][key]) for r in runs_of(runs, variant)}


def fmt(x: float, digits: int = 3) -> str:
    """A short human-readable number (handles inf/nan)."""
    if x is None:
        return "n/a"
    if isinstance(x, float) and not math.isfinite(x):
        return "never" if x == math.inf else str(x)
    return f"{x:.{digits}g}"
