"""Reports of a hyperparameter search: ``trials.csv``, ``results.md`` and ``search.png``.

The plot has two panels: validation accuracy against the learning rate, one colour per
optimizer (the classic picture of random search: each optimizer has its own good lr band),
and parallel coordinates of every hyperparameter, one line per completed trial coloured by its
accuracy. matplotlib's object-oriented API only (no pyplot, no global state).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from deepgrad.search.backends import sort_trials
from deepgrad.search.space import PARAMS, SearchSpace
from deepgrad.search.trial import RESULT_KEYS
from deepgrad.training.io import atomic_write

#: the columns of trials.csv, in order.
COLUMNS = ("trial", "round", *PARAMS, *RESULT_KEYS)


def _fmt(value, key: str = "") -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if key in ("val_acc", "best_val_acc"):
            return f"{value:.4f}"
        if key == "seconds":
            return f"{value:.1f}"
        return f"{value:.3g}"
    return str(value)


def trials_csv(records: Sequence[Mapping]) -> str:
    """The records as CSV text (full precision), sorted best first."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in sort_trials(records):
        writer.writerow(["" if r.get(k) is None else repr(r[k]) if isinstance(r[k], float)
                         else r[k] for k in COLUMNS])
    return buf.getvalue()


def results_table(records: Sequence[Mapping], limit: int | None = None) -> str:
    """A markdown table of the trials, best first (``limit``: at most this many rows)."""
    head = ["rank", "trial", "round", "val acc", "optimizer", "lr", "batch", "weight decay",
            "hidden", "dropout", "params", "seconds", "status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = sort_trials(records)
    for rank, r in enumerate(rows[:limit] if limit else rows, 1):
        hidden = "x".join([str(r["width"])] * int(r["depth"])) if r.get("depth") else "none"
        cells = [rank, r["trial"], r["round"], _fmt(r.get("val_acc"), "val_acc"),
                 r["optimizer"], _fmt(r["lr"]), r["batch_size"], _fmt(r["weight_decay"]),
                 hidden, f"{r['dropout']:.2f}", f"{r.get('parameters') or 0:,}",
                 _fmt(r.get("seconds"), "seconds"), r["status"]]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def results_markdown(records: Sequence[Mapping], spaces: Sequence[SearchSpace],
                     settings: Mapping) -> str:
    """``results.md``: the settings, the space of each round, the best trial, the table."""
    lines = ["# Hyperparameter search", ""]
    lines += [f"- {k}: {v}" for k, v in settings.items()]
    for i, space in enumerate(spaces, 1):
        lines.append(f"- round {i} space: {space.summary()}")
    ok = [r for r in records if r.get("status") == "ok"]
    counts = {s: sum(r.get("status") == s for r in records) for s in ("ok", "pruned",
                                                                       "diverged")}
    lines += ["", f"{len(records)} trials: {counts['ok']} completed, {counts['pruned']} pruned, "
              f"{counts['diverged']} diverged.", ""]
    if ok:
        b = sort_trials(ok)[0]
        lines += [f"Best: trial {b['trial']}, validation accuracy {b['val_acc']:.4f} with "
                  + ", ".join(f"{k}={_fmt(b[k])}" for k in PARAMS) + ".", ""]
    lines += [results_table(records), ""]
    return "\n".join(lines)


def _import_matplotlib():
    try:
        from matplotlib import cm, colors
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("the search plot needs matplotlib: pip install matplotlib") from exc
    return Figure, FigureCanvasAgg, cm, colors


#: parallel-coordinate axes: (record key, label, log2 scale)
_AXES = (("lr", "lr", True), ("batch_size", "batch", True), ("weight_decay", "wd", True),
         ("depth", "depth", False), ("width", "width", True), ("dropout", "dropout", False),
         ("val_acc", "val acc", False))


def plot_search(records: Sequence[Mapping], path: str | Path) -> Path:
    """Draw ``search.png``: accuracy vs lr by optimizer, and parallel coordinates."""
    Figure, FigureCanvasAgg, _, _ = _import_matplotlib()
    fig = Figure(figsize=(13, 4.8), dpi=90)
    FigureCanvasAgg(fig)
    # NOTE: fixed margins rather than a layout engine, which costs seconds per figure.
    fig.subplots_adjust(left=0.06, right=0.93, bottom=0.13, top=0.9, wspace=0.25)
    ax, par = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    ok = [r for r in records if r.get("status") == "ok" and r.get("val_acc") is not None]
    bad = [r for r in records if r not in ok]
    optimizers = sorted({r["optimizer"] for r in records})
    colors = {name: f"C{i % 10}" for i, name in enumerate(optimizers)}
    markers = {1: "o", 2: "^", 3: "s"}
    for name in optimizers:
        for rnd in sorted({r["round"] for r in ok if r["optimizer"] == name}):
            pts = [r for r in ok if r["optimizer"] == name and r["round"] == rnd]
            ax.scatter([r["lr"] for r in pts], [r["val_acc"] for r in pts], s=36,
                       color=colors[name], marker=markers.get(rnd, "D"), alpha=0.85,
                       label=name if rnd == 1 else f"{name} (round {rnd})")
    if bad:
        floor = min([r["val_acc"] for r in ok], default=0.0)
        ax.scatter([r["lr"] for r in bad], [floor] * len(bad), marker="x", color="0.4",
                   label="diverged / pruned")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("validation accuracy")
    ax.set_title("validation accuracy vs learning rate")
    ax.grid(True, alpha=0.3)
    if records:
        ax.legend(fontsize=8, loc="best")
    _parallel(fig, par, ok)
    fig.suptitle(f"hyperparameter search: {len(records)} trials")
    return atomic_write(path, lambda f: fig.savefig(f, format="png"))


def _parallel(fig, ax, ok: Sequence[Mapping]) -> None:
    """Parallel coordinates: every axis scaled to [0, 1] over the completed trials."""
    ax.set_title("parallel coordinates (completed trials; colour = val acc)")
    ax.set_xticks(range(len(_AXES)), [label for _, label, _ in _AXES])
    ax.set_yticks([])
    ax.set_ylim(-0.08, 1.08)
    if not ok:
        ax.text(0.5, 0.5, "no completed trial", ha="center", transform=ax.transAxes)
        return
    cols = []
    for key, _, log in _AXES:
        raw = np.array([float(r[key]) for r in ok])
        v = np.log2(raw) if log and (raw > 0).all() else raw
        lo, hi = v.min(), v.max()
        cols.append((v - lo) / (hi - lo) if hi > lo else np.full_like(v, 0.5))
        x = len(cols) - 1  # the axis' range, in the hyperparameter's own units
        ax.text(x, -0.06, _fmt(float(raw.min())), ha="center", fontsize=7)
        ax.text(x, 1.03, _fmt(float(raw.max())), ha="center", fontsize=7)
    data = np.stack(cols, 1)
    accs = np.array([r["val_acc"] for r in ok])
    _, _, cm, colors = _import_matplotlib()
    cmap = cm.viridis
    norm = colors.Normalize(accs.min(), accs.max() if accs.max() > accs.min() else
                            accs.min() + 1e-9)
    order = np.argsort(accs)  # best drawn last, on top
    for i in order:
        ax.plot(range(len(_AXES)), data[i], color=cmap(norm(accs[i])),
                lw=2.5 if i == order[-1] else 1.0, alpha=0.9)
    for x in range(len(_AXES)):
        ax.axvline(x, color="0.7", lw=0.8)
    fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="val acc",
                 fraction=0.04)


def write_reports(out_dir: str | Path, records: Sequence[Mapping],
                  spaces: Sequence[SearchSpace], settings: Mapping,
                  plot: bool = True) -> dict[str, Path]:
    """Write ``trials.csv``, ``results.md`` and (with ``plot``) ``search.png`` into
    ``out_dir``, each atomically; return their paths by name."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "trials.csv", "md": out / "results.md"}
    csv_text = trials_csv(records).encode()
    md_text = results_markdown(records, spaces, settings).encode()
    atomic_write(paths["csv"], lambda f: f.write(csv_text))
    atomic_write(paths["md"], lambda f: f.write(md_text))
    if plot:
        paths["png"] = plot_search(records, out / "search.png")
    return paths

