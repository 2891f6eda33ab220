"""``Report``: the result of :func:`deepgrad.diagnostics.inspect`, as a table, a dict or PNGs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deepgrad.diagnostics.flags import THRESHOLDS

#: Columns of :meth:`Report.table`: (record key, header, width, formatter kind).
_COLUMNS = (
    ("name", "layer", None, "str"),
    ("type", "type", None, "str"),
    ("output_shape", "output", None, "shape"),
    ("act_mean", "mean", 9, "num"),
    ("act_std", "std", 9, "num"),
    ("frac_saturated", "sat%", 5, "pct"),
    ("frac_dead", "dead%", 5, "pct"),
    ("grad_norm", "|dW|", 9, "num"),
    ("update_ratio", "lr|dW|/|W|", 10, "num"),
    ("out_grad_rms", "rms(dY)", 9, "num"),
)


def _fmt(value, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "shape":
        return "x".join(str(d) for d in value)
    if kind == "pct":
        return f"{100 * value:.0f}"
    if kind == "num":
        return f"{value:.3g}" if math.isfinite(value) else str(value)
    return str(value)


def _jsonable(value):
    """Plain Python values with non-finite floats as None (JSON has no NaN or inf)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


@dataclass
class Report:
    """Per-layer statistics of one forward (and backward) pass, and the findings they raise.

    Attributes:
        layers: one dict per layer in execution order, with ``name`` (dotted module name),
            ``type`` (class name), ``output_shape``, ``num_params``, ``act_mean``,
            ``act_std``, ``frac_saturated`` (sigmoid/tanh, else None), ``frac_dead`` (ReLU,
            else None), ``nonfinite``, and, when targets were given, ``weight_norm``,
            ``grad_norm``, ``update_ratio`` (layers with parameters, else None),
            ``out_grad_norm`` and ``out_grad_rms`` (gradient of the loss w.r.t. the output).
        flags: short human-readable findings (see :mod:`deepgrad.diagnostics.flags`).
        batch_size: number of samples inspected.
        input_shape: shape of the input batch.
        input_std: std of the input batch (the reference for collapse and growth).
        loss: the loss value, or None without targets.
        lr: the learning rate used for ``update_ratio``.
        mode: ``"train"`` or ``"eval"``, the mode the pass ran in.
        meta: free-form context (e.g. the model configuration of ``run_diagnose``).
        samples: per layer name, ``{"activations": array, "gradients": array}`` subsamples
            used for the histograms (not part of :meth:`to_dict`).
    """

    layers: list[dict]
    flags: list[str]
    batch_size: int
    input_shape: tuple
    input_std: float | None
    loss: float | None = None
    lr: float = 1e-2
    mode: str = "train"
    meta: dict = field(default_factory=dict)
    samples: dict = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        """A JSON-able dict (non-finite numbers become None) with the thresholds used."""
        return _jsonable({
            "batch_size": self.batch_size,
            "input_shape": list(self.input_shape),
            "input_std": self.input_std,
            "loss": self.loss,
            "lr": self.lr,
            "mode": self.mode,
            "meta": self.meta,
            "layers": self.layers,
            "flags": self.flags,
            "thresholds": THRESHOLDS,
        })

    def table(self) -> str:
        """A fixed-width text table of the layers, followed by the flags."""
        headers = [c[1] for c in _COLUMNS]
        rows = [[_fmt(r.get(key), kind) for key, _, _, kind in _COLUMNS] for r in self.layers]
        widths = []
        for i, (_, head, width, _) in enumerate(_COLUMNS):
            natural = max([len(head)] + [len(row[i]) for row in rows])
            widths.append(max(natural, width or 0))
        right = [kind in ("num", "pct") for *_, kind in _COLUMNS]

        def line(cells):
            return "  ".join(c.rjust(w) if r else c.ljust(w)
                             for c, w, r in zip(cells, widths, right)).rstrip()

        loss = "-" if self.loss is None else f"{self.loss:.4g}"
        std = "-" if self.input_std is None else f"{self.input_std:.3g}"
        out = [f"batch {self.batch_size} x {tuple(self.input_shape[1:])}, input std {std}, "
               f"loss {loss}, lr {self.lr:g}, {self.mode} mode",
               line(headers), line(["-" * w for w in widths])]
        out += [line(row) for row in rows]
        out.append("")
        if self.flags:
            out.append("flags:")
            out += [f"  - {f}" for f in self.flags]
        else:
            out.append("flags: none")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()

    def save_histograms(self, path_or_dir, bins: int = 50, types=None) -> list[Path]:
        """Write per-layer histograms of activations and gradients as PNG files.

        See :func:`deepgrad.diagnostics.histograms.save_histograms`.
        """
        from deepgrad.diagnostics.histograms import save_histograms

        return save_histograms(self, path_or_dir, bins=bins, types=types)
