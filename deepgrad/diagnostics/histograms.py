"""Per-layer histograms of activations and back-propagated gradients, as PNG files.

The classic figure of Glorot & Bengio (2010, Figs. 3, 6 and 7): one small histogram per
layer, so that saturation (mass piled at the bounds of sigmoid/tanh), collapse (a spike at a
constant), dead ReLUs (a spike at 0) and gradients shrinking towards the input can be seen at
a glance. matplotlib is imported only here, and only its object-oriented API is used (no
pyplot, no global backend switch).

Reference: Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward
neural networks".
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

#: Cells per row of the grid.
_COLUMNS = 4


def _import_matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("save_histograms needs matplotlib: pip install matplotlib") from exc
    return Figure, FigureCanvasAgg


def _targets(path_or_dir) -> tuple[Path, Path]:
    """(activations PNG, gradients PNG) for a directory or a ``.png`` file name."""
    path = Path(path_or_dir)
    if path.suffix.lower() == ".png":
        return path, path.with_name(f"{path.stem}-gradients.png")
    return path / "activations.png", path / "gradients.png"


def _figure(report, kind: str, names: list[str], bins: int):
    Figure, FigureCanvasAgg = _import_matplotlib()
    by_name = {r["name"]: r for r in report.layers}
    ncols = min(_COLUMNS, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig = Figure(figsize=(3.0 * ncols, 2.2 * nrows + 0.5))
    FigureCanvasAgg(fig)
    # NOTE: fixed margins rather than layout="constrained", which costs seconds per figure.
    top = 1.0 - 0.5 / (2.2 * nrows + 0.5)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.08 / nrows, top=top - 0.25 / nrows,
                        hspace=0.55, wspace=0.25)
    title = "activations" if kind == "activations" else "gradients d loss / d output"
    fig.suptitle(f"{title} per layer (batch {report.batch_size}, {report.mode} mode)")
    for i, name in enumerate(names):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        values = report.samples[name][kind]
        values = values[np.isfinite(values)]
        rec = by_name.get(name, {})
        # NOTE: np.histogram + stairs draws one patch, where ax.hist draws one per bin.
        if values.size:
            counts, edges = np.histogram(values, bins=bins)
            ax.stairs(counts, edges, fill=True,
                      color="tab:blue" if kind == "activations" else "tab:red")
        std = float(np.std(values)) if values.size else float("nan")
        ax.set_title(f"{name} {rec.get('type', '')}  std {std:.2g}", fontsize=8)
        ax.tick_params(labelsize=6)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 3))
    return fig


def save_histograms(report, path_or_dir, bins: int = 50, types=None) -> list[Path]:
    """Write a grid of small per-layer histograms: activations, and gradients when measured.

    Args:
        report: a :class:`~deepgrad.diagnostics.report.Report` from ``inspect``.
        path_or_dir: a directory (created if needed; writes ``activations.png`` and
            ``gradients.png`` in it) or a ``.png`` file name (activations there, gradients in
            ``<stem>-gradients.png`` beside it).
        bins: bins per histogram.
        types: optional collection of layer type names to plot (e.g. ``{"Tanh"}``, the
            layers Glorot & Bengio show); all layers by default.

    Returns:
        The paths written (the gradient figure only when the report has gradients).

    Raises:
        ImportError: when matplotlib is not installed (``pip install matplotlib``).
        ValueError: when no layer is left to plot.
    """
    _import_matplotlib()
    types = None if types is None else set(types)
    by_name = {r["name"]: r for r in report.layers}
    names = [n for n in report.samples
             if types is None or by_name.get(n, {}).get("type") in types]
    if not names:
        raise ValueError("save_histograms: no layer to plot"
                         + (f" of types {sorted(types)}" if types else ""))
    act_path, grad_path = _targets(path_or_dir)
    act_path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, path in (("activations", act_path), ("gradients", grad_path)):
        chosen = [n for n in names if kind in report.samples[n]]
        if not chosen:
            continue
        fig = _figure(report, kind, chosen, bins)
        fig.savefig(path, dpi=80)
        written.append(path)
    return written
