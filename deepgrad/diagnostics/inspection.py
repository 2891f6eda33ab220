"""``inspect``: one forward (and backward) pass that measures every layer of a model.

The notes' advice, made a function: look at each layer's activation distribution after
initialisation, and at the gradients flowing back through depth, before training for hours.
Saturated sigmoid/tanh units (Glorot & Bengio 2010), dead ReLUs, activations that shrink or
blow up with depth (He et al. 2015) and vanishing or exploding gradients all show up in one
batch.

References:
    Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward neural
    networks".
    He et al. 2015, "Delving deep into rectifiers: surpassing human-level performance on
    ImageNet classification".
    Ioffe & Szegedy 2015, "Batch Normalization: accelerating deep network training by
    reducing internal covariate shift".
"""

from __future__ import annotations

import math

import numpy as np

from deepgrad import _random
from deepgrad.autograd import grad as autograd_grad
from deepgrad.autograd.grad_mode import enable_grad
from deepgrad.diagnostics.flags import SIGMOID_SATURATION, TANH_SATURATION, compute_flags
from deepgrad.diagnostics.report import Report
from deepgrad.nn import functional as F
from deepgrad.nn.modules.activation import ReLU, Sigmoid, Tanh
from deepgrad.nn.modules.module import Module
from deepgrad.tensor import Tensor

#: Learning rate assumed for ``update_ratio`` when none is given: a typical SGD step size.
DEFAULT_LR = 1e-2

#: Values kept per layer (drawn uniformly, with a fixed private seed) for the histograms.
MAX_SAMPLES = 20_000


def _first_tensor(out):
    """The module's output tensor; for tuples (e.g. LSTM's), the first Tensor inside."""
    if isinstance(out, Tensor):
        return out
    if isinstance(out, (tuple, list)):
        for item in out:
            t = _first_tensor(item)
            if t is not None:
                return t
    return None


def _is_layer(module: Module) -> bool:
    """Leaves of the module tree, plus any module that holds parameters itself."""
    has_children = next(module.children(), None) is not None
    return not has_children or next(module.parameters(recurse=False), None) is not None


def _as_input(inputs, model: Module) -> Tensor:
    if isinstance(inputs, Tensor):
        x = inputs
    else:
        arr = np.asarray(inputs)
        if arr.dtype.kind == "f":
            # NOTE: cast to the parameters' dtype so a float64 batch meets float32 weights.
            p = next((p for p in model.parameters() if p.data.dtype.kind == "f"), None)
            if p is not None:
                arr = arr.astype(p.data.dtype, copy=False)
        x = Tensor(arr)
    if x.data.dtype.kind == "f" and not np.all(np.isfinite(x.data)):
        raise ValueError("inspect: the inputs contain NaN or inf")
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"inspect: expected a non-empty batch (N, ...), got shape {x.shape}")
    return x


def _sample(arr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    flat = arr.reshape(-1)
    if flat.size > MAX_SAMPLES:
        flat = flat[rng.integers(0, flat.size, MAX_SAMPLES)]
    with np.errstate(over="ignore"):
        return flat.astype(np.float32)


def _activation_stats(module: Module, y: np.ndarray) -> dict:
    """Mean, std, saturated fraction (sigmoid/tanh) and dead-unit fraction (ReLU) of ``y``."""
    with np.errstate(over="ignore", invalid="ignore"):
        return _activation_stats_unchecked(module, y)


def _activation_stats_unchecked(module: Module, y: np.ndarray) -> dict:
    finite = bool(np.all(np.isfinite(y))) if y.dtype.kind == "f" else True
    rec = {
        "act_mean": float(np.mean(y, dtype=np.float64)) if y.size else None,
        "act_std": float(np.std(y, dtype=np.float64)) if y.size else None,
        "frac_saturated": None,
        "frac_dead": None,
        "nonfinite": not finite,
    }
    if not y.size:
        return rec
    if isinstance(module, Sigmoid):
        lo, hi = SIGMOID_SATURATION
        rec["frac_saturated"] = float(np.mean((y < lo) | (y > hi)))
    elif isinstance(module, Tanh):
        rec["frac_saturated"] = float(np.mean(np.abs(y) > TANH_SATURATION))
    elif isinstance(module, ReLU) and y.ndim >= 1:
        # A unit is one feature (or one channel position) of a sample: dead when it is zero
        # for every sample of the batch, so that no sample sends it any gradient.
        dead = np.all(y == 0, axis=0)
        rec["frac_dead"] = float(np.mean(dead))
    return rec


def _norm(arr: np.ndarray) -> float:
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.sqrt(np.sum(np.square(arr, dtype=np.float64))))


def _snapshot(model: Module):
    """The state a forward pass may change: every module's mode, every buffer's value."""
    modes = [(m, m.training) for m in model.modules()]
    buffers = []
    for m in model.modules():
        for name, b in m.named_buffers(recurse=False):
            buffers.append((m, name, b, b.data.copy()))
    return modes, buffers, _random.get_rng_state()


def _restore(snapshot) -> None:
    modes, buffers, rng_state = snapshot
    for m, training in modes:
        # NOTE: per module, not model.train(mode): sub-modules may have been in another mode.
        m.training = training
    for m, name, b, saved in buffers:
        if getattr(m, name) is not b:
            setattr(m, name, b)
        if b.data.shape == saved.shape and b.data.dtype == saved.dtype:
            b.data[...] = saved
        else:
            b.data = saved
    _random.set_rng_state(rng_state)


def inspect(model: Module, inputs, targets=None, loss_fn=None, lr: float | None = None,
            *, train: bool = True) -> Report:
    """Run one batch through ``model`` and measure every layer's activations and gradients.

    Forward hooks record each layer's output (a layer is a leaf module, or any module holding
    parameters itself; a module called several times is measured at its first call). With
    ``targets``, the loss is differentiated with ``autograd.grad`` w.r.t. the parameters and
    every layer's output, so the parameters' ``.grad`` are never touched. Afterwards every
    module's train/eval mode, every buffer (e.g. BatchNorm's running statistics, updated by a
    forward pass in train mode) and the global random generator (dropout draws from it) are
    restored and the hooks removed: the model is left exactly as it was.

    Per layer, the record holds: ``name``, ``type``, ``output_shape``, ``num_params``,
    ``act_mean``, ``act_std``, ``frac_saturated`` (sigmoid: fraction of outputs < 0.01 or
    > 0.99; tanh: |y| > 0.99; None for other layers), ``frac_dead`` (ReLU: fraction of units,
    i.e. feature/channel positions, that are zero for every sample; None for others),
    ``nonfinite``; with targets, for layers with parameters ``weight_norm`` (||W||, the
    parameter named ``weight``, else all of the layer's own parameters), ``grad_norm``
    (||d loss/d W||) and ``update_ratio`` (lr ||d loss/d W|| / ||W||, the relative change one
    SGD step would make; None when ||W|| = 0), and for every layer ``out_grad_norm`` and
    ``out_grad_rms`` (norm and RMS of d loss / d output, the back-propagated gradient whose
    shrinking or growth through depth is vanishing or exploding gradients).

    Args:
        model: the network.
        inputs: a batch (Tensor or array, N first). Float arrays are cast to the parameters'
            dtype.
        targets: optional targets; with them the loss and all gradients are measured.
        loss_fn: ``loss_fn(output, targets) -> scalar Tensor``; defaults to
            ``F.cross_entropy``.
        lr: learning rate for ``update_ratio``; defaults to :data:`DEFAULT_LR` (1e-2).
        train: run in train mode (batch statistics in BatchNorm, dropout on), as training
            sees the network; False runs in eval mode.

    Returns:
        A :class:`~deepgrad.diagnostics.report.Report` with ``layers`` and ``flags``.

    Raises:
        ValueError: for an empty batch or inputs containing NaN or inf.

    Reference: Glorot & Bengio 2010 (activation and back-propagated gradient statistics per
    layer); He et al. 2015 (variance through depth); Ioffe & Szegedy 2015.
    """
    if not isinstance(model, Module):
        raise TypeError(f"inspect: model must be an nn.Module, got {type(model).__name__}")
    lr = DEFAULT_LR if lr is None else float(lr)
    loss_fn = F.cross_entropy if loss_fn is None else loss_fn
    x = _as_input(inputs, model)
    layers = [(name, m) for name, m in model.named_modules() if _is_layer(m)]
    captured: dict[str, Tensor | None] = {}
    order: list[str] = []

    def make_hook(name):
        def hook(module, args, output):
            if name not in captured:
                captured[name] = _first_tensor(output)
                order.append(name)
        return hook

    snapshot = _snapshot(model)
    handles = []
    try:
        model.train(train)
        handles = [m.register_forward_hook(make_hook(name)) for name, m in layers]
        with enable_grad():
            output = model(x)
            out_tensor = _first_tensor(output)
            loss = None
            if targets is not None and out_tensor is not None and (
                    out_tensor.data.dtype.kind != "f" or np.all(np.isfinite(out_tensor.data))):
                loss = loss_fn(output, targets)
    finally:
        for h in handles:
            h.remove()
        _restore(snapshot)

    modules = dict(layers)
    records = []
    for name in order:
        module, t = modules[name], captured[name]
        own = dict(module.named_parameters(recurse=False))
        rec = {
            "name": name or "(model)",
            "type": type(module).__name__,
            "output_shape": list(t.shape) if t is not None else None,
            "num_params": int(sum(p.numel() for p in own.values())),
        }
        rec.update(_activation_stats(module, t.data) if t is not None else
                   {"act_mean": None, "act_std": None, "frac_saturated": None,
                    "frac_dead": None, "nonfinite": False})
        rec.update({"weight_norm": None, "grad_norm": None, "update_ratio": None,
                    "out_grad_norm": None, "out_grad_rms": None})
        records.append(rec)

    loss_value = None
    grads_by_layer: dict[str, np.ndarray] = {}
    if loss is not None:
        loss_value = float(loss.item())
        if loss.requires_grad and math.isfinite(loss_value):
            grads_by_layer = _gradients(loss, order, modules, captured, records, lr)

    rng = np.random.default_rng(0)
    samples = {}
    for name in order:
        t = captured[name]
        if t is None or t.data.dtype.kind != "f":
            continue
        entry = {"activations": _sample(t.data, rng)}
        if name in grads_by_layer:
            entry["gradients"] = _sample(grads_by_layer[name], rng)
        samples[name or "(model)"] = entry

    x_std = float(np.std(x.data, dtype=np.float64)) if x.data.dtype.kind == "f" else None
    flags = compute_flags(records, x_std, x.shape[0], loss_value, lr)
    return Report(layers=records, flags=flags, batch_size=int(x.shape[0]),
                  input_shape=tuple(x.shape), input_std=x_std, loss=loss_value, lr=lr,
                  mode="train" if train else "eval", samples=samples)


def _gradients(loss: Tensor, order, modules, captured, records, lr) -> dict[str, np.ndarray]:
    """Fill the gradient fields of ``records``; return d loss / d output per layer name."""
    weights = []  # (record, [params whose gradient is "the weight gradient"])
    for name, rec in zip(order, records):
        own = dict(modules[name].named_parameters(recurse=False))
        chosen = [own["weight"]] if "weight" in own else list(own.values())
        chosen = [p for p in chosen if p is not None and p.requires_grad]
        if chosen:
            weights.append((rec, chosen))
    params = [p for _, ps in weights for p in ps]
    outs = []  # (name, record, tensor)
    for name, rec in zip(order, records):
        t = captured[name]
        if t is not None and t.requires_grad and t.grad_fn is not None:
            outs.append((name, rec, t))
    wanted = params + [t for *_, t in outs]
    if not wanted:
        return {}
    # NOTE: autograd.grad returns the gradients instead of accumulating them into .grad, so
    # the parameters' gradients are left as they were without saving and restoring them.
    grads = autograd_grad(loss, wanted, allow_unused=True)
    by_param = {id(p): g for p, g in zip(params, grads[:len(params)])}
    for rec, ps in weights:
        gs = [by_param[id(p)] for p in ps]
        if any(g is None for g in gs):
            continue
        w_norm = math.sqrt(sum(_norm(p.data) ** 2 for p in ps))
        g_norm = math.sqrt(sum(_norm(g.data) ** 2 for g in gs))
        rec["weight_norm"], rec["grad_norm"] = w_norm, g_norm
        rec["update_ratio"] = lr * g_norm / w_norm if w_norm > 0 else None
    out = {}
    for (name, rec, _), g in zip(outs, grads[len(params):]):
        if g is None:
            continue
        g_norm = _norm(g.data)
        rec["out_grad_norm"] = g_norm
        rec["out_grad_rms"] = g_norm / math.sqrt(g.data.size) if g.data.size else None
        out[name] = g.data
    return out
