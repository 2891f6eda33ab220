"""Thresholds and the rules that turn per-layer statistics into short findings ("flags").

Each threshold is a named constant with the reasoning behind it, so that a flag can be traced
to one number and argued with. The rules read only the per-layer records that
:func:`deepgrad.diagnostics.inspect` builds (plain dicts), so they can be re-run on a saved
report.

References:
    Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward neural
    networks" (saturation of sigmoid/tanh layers, shrinking back-propagated gradients).
    He et al. 2015, "Delving deep into rectifiers" (eq. 10: the variance of a layer's output is
    the input's times prod_l fan_in_l Var(w_l) / 2 for ReLU, so it grows or vanishes
    geometrically with depth unless fan_in Var(w) = 2).
    Ioffe & Szegedy 2015, "Batch Normalization" (saturation and shifting activation
    distributions as the obstacle that normalisation removes).
"""

from __future__ import annotations

import math

#: Bounds that count a sigmoid output as saturated: within 1% of 0 or 1. There sigmoid's
#: derivative y (1 - y) is below 0.0099, at least 25x less than its peak 0.25.
SIGMOID_SATURATION = (0.01, 0.99)

#: A tanh output is saturated when |y| > 0.99; its derivative 1 - y^2 is then below 0.02,
#: at least 50x less than its peak 1.
TANH_SATURATION = 0.99

#: Flag a sigmoid/tanh layer when more than this fraction of its outputs is saturated. Every
#: saturated unit passes back almost no gradient (factor < 0.02), so with a fifth of them
#: saturated a large share of the layer's gradient signal is gone; Glorot & Bengio (2010,
#: Fig. 2) show the top sigmoid layer driven to saturation and learning stalling. A
#: Xavier-initialised tanh layer has well under 1% of its outputs saturated.
SATURATION_FRAC = 0.2

#: Flag a ReLU layer when more than this fraction of its units is zero for every sample of the
#: batch. Such a unit gets a zero gradient from every sample and stays dead under SGD. Half,
#: not less: even with He initialisation the units of a deep ReLU net grow correlated with
#: depth, and a minority is silent on a whole batch at initialisation (measured here: 10-25%
#: at depth 10, width 256; Lu et al. 2019, "Dying ReLU and initialization"). More than half
#: points at negative biases, a too-large step or a bad initialisation.
DEAD_FRAC = 0.5

#: Dead units are only flagged for batches at least this large. A healthy unit with symmetric
#: pre-activations is zero on all N samples with probability 2^-N (0.4% for N = 8), so a
#: quarter of a layer dead by chance is then practically impossible; below that, it is not.
DEAD_MIN_BATCH = 8

#: Gradients vanish when the RMS of d loss / d output at the first layer with parameters is
#: below this fraction of the last such layer's. With variance-preserving initialisation
#: (Xavier for tanh, He for ReLU) the ratio stays within an order of magnitude or two (a
#: change of width alone moves it by about sqrt(width ratio)); a factor 1000 means the first
#: layers learn 1000x more slowly than the last (Glorot & Bengio 2010, Sec. 4.2.2).
VANISH_RATIO = 1e-3

#: Gradients explode when that ratio is above this (the mirror image of ``VANISH_RATIO``).
EXPLODE_RATIO = 1e3

#: Activations collapse when a layer's output std falls below this fraction of the input's:
#: each layer multiplies the std by about sqrt(fan_in) std(w) gain, and a product below 1
#: shrinks the signal geometrically with depth (He et al. 2015, eq. 10); three orders of
#: magnitude down, the layers above see an almost constant input.
COLLAPSE_RATIO = 1e-3

#: Activations grow when a layer's output std exceeds the input's by this factor: the same
#: geometric law with a factor above 1. The logits then saturate the softmax, the loss is
#: huge, and float32 overflows (3.4e38) a few dozen layers further on.
GROWTH_RATIO = 1e3

#: Flag a layer whose update ratio lr ||grad W|| / ||W|| exceeds this: one SGD step would move
#: its weights by more than 10%. A common rule of thumb puts a healthy ratio near 1e-3
#: (Karpathy, CS231n notes "Neural Networks Part 3"); far above, the learning rate is too high.
UPDATE_RATIO_HIGH = 0.1

#: Layer types whose outputs are normalised by construction and are left out of the
#: collapse/growth checks (a softmax of tiny logits is near 1/C with tiny std by design).
_NORMALISED_OUTPUTS = frozenset({"Softmax", "LogSoftmax"})

THRESHOLDS = {
    "SIGMOID_SATURATION": SIGMOID_SATURATION,
    "TANH_SATURATION": TANH_SATURATION,
    "SATURATION_FRAC": SATURATION_FRAC,
    "DEAD_FRAC": DEAD_FRAC,
    "DEAD_MIN_BATCH": DEAD_MIN_BATCH,
    "VANISH_RATIO": VANISH_RATIO,
    "EXPLODE_RATIO": EXPLODE_RATIO,
    "COLLAPSE_RATIO": COLLAPSE_RATIO,
    "GROWTH_RATIO": GROWTH_RATIO,
    "UPDATE_RATIO_HIGH": UPDATE_RATIO_HIGH,
}


def _finite(x) -> bool:
    return x is not None and math.isfinite(x)


def _label(layer: dict) -> str:
    return f"layer {layer['name']} ({layer['type']})"


def _pct(frac: float) -> str:
    return f"{100 * frac:.0f}%"


def layer_flags(layer: dict, batch_size: int) -> list[str]:
    """Findings about one layer on its own: non-finite output, saturation, dead units.

    Args:
        layer: a record built by ``inspect`` (keys ``name``, ``type``, ``act_std``,
            ``frac_saturated``, ``frac_dead``, ``nonfinite``).
        batch_size: the number of samples the statistics came from.

    Returns:
        Zero or more short sentences.
    """
    out = []
    if layer.get("nonfinite"):
        out.append(f"{_label(layer)}: output contains NaN or inf")
        return out
    sat = layer.get("frac_saturated")
    if sat is not None and sat > SATURATION_FRAC:
        out.append(f"{_label(layer)}: {_pct(sat)} saturated")
    dead = layer.get("frac_dead")
    if dead is not None and dead > DEAD_FRAC and batch_size >= DEAD_MIN_BATCH:
        out.append(f"{_label(layer)}: {_pct(dead)} dead units")
    return out


def update_flags(layers: list[dict], lr: float | None = None) -> list[str]:
    """One finding when any layer's update ratio exceeds :data:`UPDATE_RATIO_HIGH`."""
    high = [r for r in layers if _finite(r.get("update_ratio"))
            and r["update_ratio"] > UPDATE_RATIO_HIGH]
    if not high:
        return []
    top = max(high, key=lambda r: r["update_ratio"])
    at = "" if lr is None else f" at lr {lr:g}"
    where = _label(top) + (f" and {len(high) - 1} more" if len(high) > 1 else "")
    return [f"update/weight ratio up to {top['update_ratio']:.1e}{at} ({where}; healthy "
            "~1e-3): lower the learning rate"]


def _sci(x: float) -> str:
    return "0" if x == 0 else f"{x:.0e}"


def gradient_flags(layers: list[dict]) -> list[str]:
    """Vanishing or exploding gradients: first vs last layer with parameters.

    Compares the RMS of the gradient of the loss w.r.t. each layer's output (the
    back-propagated gradient of Glorot & Bengio 2010, Fig. 7), which is independent of the
    layer's width, between the first and the last layer that has parameters.
    """
    measured = [r for r in layers if r.get("num_params") and r.get("out_grad_rms") is not None]
    bad = [r for r in measured if not math.isfinite(r["out_grad_rms"])]
    if bad:
        return [f"gradients are NaN or inf at {_label(bad[-1])}"]
    if len(measured) < 2:
        return []
    first, last = measured[0], measured[-1]
    g0, g1 = first["out_grad_rms"], last["out_grad_rms"]
    if g1 <= 0:
        return []
    ratio = g0 / g1
    detail = (f"(RMS of d loss/d output: {_label(first)} {g0:.1e}, "
              f"{_label(last)} {g1:.1e})")
    if ratio < VANISH_RATIO:
        return [f"gradients vanish: first layer's gradient is {_sci(ratio)} of the last's "
                f"{detail}"]
    if ratio > EXPLODE_RATIO:
        return [f"gradients explode: first layer's gradient is {_sci(ratio)} times the last's "
                f"{detail}"]
    return []


def activation_flags(layers: list[dict], input_std: float | None) -> list[str]:
    """Collapse or growth of the activations' std across depth, relative to the input's."""
    if not _finite(input_std) or input_std <= 0:
        return []
    checked = [r for r in layers if r["type"] not in _NORMALISED_OUTPUTS
               and not r.get("nonfinite") and _finite(r.get("act_std"))]
    out = []
    for r in checked:
        ratio = r["act_std"] / input_std
        if ratio < COLLAPSE_RATIO:
            mean = r["act_mean"]
            where = "to 0" if abs(mean) / input_std < COLLAPSE_RATIO else f"to {mean:.3g}"
            out.append(f"activations collapse {where} by {_label(r)} "
                       f"(std {r['act_std']:.1e}, {_sci(ratio)} of the input's)")
            break
    if checked:
        top = max(checked, key=lambda r: r["act_std"])
        ratio = top["act_std"] / input_std
        if ratio > GROWTH_RATIO:
            out.append(f"activation std grows x{ratio:.0e} across depth "
                       f"({_label(top)}: std {top['act_std']:.2g}, input {input_std:.2g})")
    return out


def compute_flags(layers: list[dict], input_std: float | None, batch_size: int,
                  loss: float | None = None, lr: float | None = None) -> list[str]:
    """All findings for one inspection, per-layer ones first (in depth order).

    Args:
        layers: the per-layer records, in execution order.
        input_std: std of the input batch (the reference for collapse/growth).
        batch_size: number of samples in the batch.
        loss: the loss value, when targets were given.
        lr: the learning rate behind the update ratios (for the message).

    Returns:
        A list of short human-readable sentences; empty for a healthy network.
    """
    out = []
    seen_nonfinite = False
    for r in layers:
        if r.get("nonfinite"):
            # NOTE: once one layer's output is NaN/inf, every later one is too; name the first.
            if seen_nonfinite:
                continue
            seen_nonfinite = True
        out += layer_flags(r, batch_size)
    if loss is not None and not math.isfinite(loss):
        out.append(f"loss is {loss}")
    out += activation_flags(layers, input_std)
    out += gradient_flags(layers)
    out += update_flags(layers, lr)
    return out
