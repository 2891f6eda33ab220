"""Plots for the lab: mean curve over seeds with a band, on ``matplotlib.figure.Figure``.

No pyplot: figures are built directly so nothing global changes and no display is needed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg", force=False)
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

LABELS = {"step": "step", "epoch": "epoch", "time": "training time (s)",
          "train_loss": "training loss", "test_loss": "test loss",
          "train_acc": "training accuracy", "test_acc": "test accuracy", "lr": "learning rate"}


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 6.0, height: float = 4.0):
    """A Figure with a grid of axes (``axes`` always a flat list).

    NOTE: fixed margins instead of a layout engine: constrained/tight layout measure every
    tick label and cost seconds per figure, which the smoke budget cannot afford.
    """
    fig = Figure(figsize=(width * ncols, height * nrows), dpi=90)
    fig.subplots_adjust(left=0.7 / (width * ncols), right=1 - 0.15 / (width * ncols),
                        bottom=0.5 / (height * nrows), top=1 - 0.45 / (height * nrows),
                        wspace=0.32, hspace=0.45)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, [ax for row in axes for ax in row]


def _stack(seed_curves: Sequence[Mapping], x: str, y: str):
    """Common x grid (the longest run's) and a (seeds, points) array, nan-padded."""
    runs = [c for c in seed_curves if len(c.get(x, [])) and len(c.get(y, []))]
    if not runs:
        return None, None
    longest = max(runs, key=lambda c: len(c[x]))
    if x == "time":  # times differ per seed: interpolate onto the mean time grid, by index
        n = len(longest[x])
        grid = np.array([np.mean([c[x][i] for c in runs if len(c[x]) > i]) for i in range(n)])
    else:
        grid = np.asarray(longest[x], dtype=float)
    ys = np.full((len(runs), len(grid)), np.nan)
    for i, c in enumerate(runs):
        v = np.asarray(c[y], dtype=float)[:len(grid)]
        ys[i, :len(v)] = v
    return grid, ys


def line_plot(curves_by_variant: Mapping[str, Sequence[Mapping]], x: str, y: str, title: str,
              *, ax=None, logy: bool = False, logx: bool = False, band: str = "minmax",
              xlabel: str | None = None, ylabel: str | None = None, colors=None,
              ylim=None) -> Figure:
    """One line per variant (the mean over seeds) with a shaded band.

    Args:
        curves_by_variant: ``{variant: [curves of seed 0, curves of seed 1, ...]}``, each
            curves a dict of lists as returned by ``train_classifier``.
        x, y: the curve keys for the axes (e.g. ``"step"``, ``"train_loss"``).
        title: the axes title.
        ax: draw into these axes instead of a new figure (its figure is returned).
        logy, logx: log scales.
        band: ``"minmax"`` (min..max over seeds) or ``"std"`` (mean ± one std).
        xlabel, ylabel: axis labels (default: readable names of ``x`` and ``y``).
        colors: optional ``{variant: color}``.
        ylim: optional (low, high).

    Returns:
        The Figure. Seeds that stopped early (divergence) are nan-padded, so the mean covers
        the seeds still running at each point.
    """
    if band not in ("minmax", "std"):
        raise ValueError(f"line_plot: band must be 'minmax' or 'std', got {band!r}")
    if ax is None:
        fig, (ax,) = new_figure()
    else:
        fig = ax.figure
    for i, (variant, seed_curves) in enumerate(curves_by_variant.items()):
        grid, ys = _stack(seed_curves, x, y)
        if grid is None:
            continue
        color = (colors or {}).get(variant, f"C{i % 10}")
        with np.errstate(all="ignore"):
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(ys, axis=0)
                if band == "minmax":
                    lo, hi = np.nanmin(ys, axis=0), np.nanmax(ys, axis=0)
                else:
                    sd = np.nanstd(ys, axis=0)
                    lo, hi = mean - sd, mean + sd
        label = f"{variant} (n={ys.shape[0]})" if ys.shape[0] > 1 else variant
        ax.plot(grid, mean, color=color, label=label, lw=1.6)
        if ys.shape[0] > 1:
            if logy:
                lo = np.where(lo > 0, lo, np.nan)
            ax.fill_between(grid, lo, hi, color=color, alpha=0.2, lw=0)
    if logy:
        ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel(xlabel or LABELS.get(x, x))
    ax.set_ylabel(ylabel or LABELS.get(y, y))
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if curves_by_variant:
        ax.legend(fontsize=8)
    return fig


def bar_plot(values_by_variant: Mapping[str, Sequence[float]], title: str, ylabel: str, *,
             ax=None, logy: bool = False) -> Figure:
    """Mean over seeds as bars, with every seed's value as a dot."""
    if ax is None:
        fig, (ax,) = new_figure()
    else:
        fig = ax.figure
    names = list(values_by_variant)
    for i, name in enumerate(names):
        vals = [v for v in values_by_variant[name] if v is not None and math.isfinite(v)]
        if vals:
            ax.bar(i, float(np.mean(vals)), color=f"C{i % 10}", alpha=0.7)
            ax.plot([i] * len(vals), vals, "k.", ms=4)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    if logy:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    return fig


def group_curves(runs: Sequence[Mapping], variants: Sequence[str] | None = None) -> dict:
    """``{variant: [curves per seed]}`` from a claim's runs list (seed order kept)."""
    out: dict = {}
    for r in sorted(runs, key=lambda r: (r["seed"])):
        if variants is None or r["variant"] in variants:
            out.setdefault(r["variant"], []).append(r["curves"])
    if variants is not None:
        out = {v: out[v] for v in variants if v in out}
    return out
