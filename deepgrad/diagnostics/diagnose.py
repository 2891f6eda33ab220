"""What ``deepgrad diagnose`` runs: build a deep MLP with a chosen activation and
initialisation, feed it one batch (MNIST or synthetic) and return the inspection report.

The experiments of Glorot & Bengio (2010) and He et al. (2015) in one call: a 10-layer
sigmoid MLP with N(0, 1) weights saturates, tanh with the "standard" U[-1/sqrt(n), 1/sqrt(n)]
initialisation shrinks its activations with depth, ReLU with Xavier halves the variance per
layer while He keeps it.

References:
    Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward neural
    networks".
    He et al. 2015, "Delving deep into rectifiers".
"""

from __future__ import annotations

import math

import numpy as np

from deepgrad import nn
from deepgrad._random import manual_seed
from deepgrad.diagnostics.inspection import DEFAULT_LR, inspect
from deepgrad.diagnostics.report import Report

#: Activations of the diagnose MLP (the CLI's ``--activation`` choices).
ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu")

#: Weight initialisations (the CLI's ``--init`` choices); biases are always zero.
#:
#: * ``zeros``: W = 0 (every unit identical: the symmetry that random init breaks);
#: * ``uniform``: U[-1/sqrt(fan_in), 1/sqrt(fan_in)], the "standard" heuristic of Glorot &
#:   Bengio 2010 (eq. 1);
#: * ``normal``: N(0, init_std^2), init_std = 1 by default (the naive choice);
#: * ``xavier``: Glorot uniform, Var(W) = 2 / (fan_in + fan_out), gain 1 (Glorot & Bengio
#:   2010, eq. 16);
#: * ``he``: Kaiming normal, Var(W) = gain^2 / fan_in with the ReLU gain sqrt(2) (for
#:   leaky_relu, sqrt(2 / (1 + slope^2))) (He et al. 2015, eq. 10).
INITS = ("zeros", "uniform", "normal", "xavier", "he")

_ACT_MODULES = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
}

#: Shape of one MNIST sample; also the shape of the synthetic inputs.
_SAMPLE_SHAPE = (1, 28, 28)
_NUM_CLASSES = 10


def _check_choice(what: str, value, choices) -> str:
    key = value.lower() if isinstance(value, str) else value
    if key not in choices:
        raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(choices)}")
    return key


def _positive(what: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{what} must be a positive int, got {value!r}")
    return int(value)


def init_weights(model: nn.Module, init: str, activation: str = "relu",
                 init_std: float = 1.0) -> nn.Module:
    """Initialise every Linear and Conv2d weight of ``model`` by ``init``; biases to zero.

    Args:
        model: the network (changed in place).
        init: one of :data:`INITS`.
        activation: the activation following the layers (chooses He's gain).
        init_std: the std of ``"normal"``.

    Returns:
        ``model``.
    """
    init = _check_choice("init", init, INITS)
    slope = 0.01
    for m in model.modules():
        if not isinstance(m, (nn.Linear, nn.Conv2d)):
            continue
        w = m.weight
        if init == "zeros":
            nn.init.zeros_(w)
        elif init == "uniform":
            bound = 1.0 / math.sqrt(w.data[0].size)
            nn.init.uniform_(w, -bound, bound)
        elif init == "normal":
            nn.init.normal_(w, 0.0, init_std)
        elif init == "xavier":
            nn.init.xavier_uniform_(w)
        elif activation == "leaky_relu":
            nn.init.kaiming_normal_(w, a=slope, nonlinearity="leaky_relu")
        else:
            nn.init.kaiming_normal_(w, nonlinearity="relu")
        if getattr(m, "bias", None) is not None:
            nn.init.zeros_(m.bias)
    return model


def build_diagnose_model(model: str | int = "mlp", width: int = 256,
                         activation: str | None = None, init: str = "he", *, depth: int = 10,
                         in_features: int = 784, num_classes: int = _NUM_CLASSES,
                         init_std: float = 1.0) -> nn.Module:
    """Build the network to diagnose.

    ``"mlp"`` (or an int, taken as the depth) is Flatten, then ``depth`` hidden blocks of
    Linear(width) + activation, then Linear(num_classes): with depth 10 the children are
    ``0`` Flatten, ``1`` Linear, ``2`` activation, ..., ``20`` the output Linear. Any other
    name is built from the model zoo (``deepgrad.models.get_model``) for MNIST-shaped
    samples, keeping its own activations. In both cases every Linear/Conv2d weight is then
    initialised by ``init`` (see :data:`INITS`) and every bias set to zero.

    Args:
        model: ``"mlp"``, a depth (int), or a zoo model name.
        width: hidden width of the MLP.
        activation: one of :data:`ACTIVATIONS` (default ``"relu"``); only for the MLP.
        init: one of :data:`INITS`.
        depth: number of hidden layers of the MLP (ignored when ``model`` is an int).
        in_features: flattened input size (784 for MNIST).
        num_classes: outputs.
        init_std: the std of the ``"normal"`` initialisation.

    Returns:
        The model, in train mode.

    Raises:
        ValueError: for an unknown model, activation or init, a non-positive size, or an
            activation given for a zoo model.
    """
    if isinstance(model, (int, np.integer)) and not isinstance(model, bool):
        model, depth = "mlp", int(model)
    if not isinstance(model, str):
        raise ValueError(f"model must be a name or a depth, got {model!r}")
    init = _check_choice("init", init, INITS)
    if not (isinstance(init_std, (int, float)) and init_std > 0 and math.isfinite(init_std)):
        raise ValueError(f"init_std must be a positive number, got {init_std!r}")
    if model.lower() != "mlp":
        if activation is not None:
            raise ValueError(f"activation applies only to the 'mlp' model, not {model!r}")
        from deepgrad.models import get_model

        net = get_model(model, input_shape=_SAMPLE_SHAPE, num_classes=num_classes)
        return init_weights(net, init, "relu", init_std)
    activation = _check_choice("activation", activation or "relu", ACTIVATIONS)
    depth = _positive("depth", depth)
    width = _positive("width", width)
    _positive("in_features", in_features)
    _positive("num_classes", num_classes)
    layers: list[nn.Module] = [nn.Flatten()]
    fan_in = in_features
    for _ in range(depth):
        layers += [nn.Linear(fan_in, width), _ACT_MODULES[activation]()]
        fan_in = width
    layers.append(nn.Linear(fan_in, num_classes))
    return init_weights(nn.Sequential(*layers), init, activation, init_std)


def _batch(batch: int, data_dir, synthetic: bool, dataset: str, download: bool,
           rng: np.random.Generator, normalize: bool):
    if synthetic:
        x = rng.standard_normal((batch, *_SAMPLE_SHAPE)).astype(np.float32)
        y = rng.integers(0, _NUM_CLASSES, batch).astype(np.int64)
        return x, y, "synthetic N(0, 1)"
    if data_dir is None:
        raise ValueError("run_diagnose: give data_dir (where the MNIST files are) or "
                         "synthetic=True")
    from deepgrad.data import load_arrays

    x_all, y_all, _, _ = load_arrays(dataset, data_dir, download=download)
    if batch > len(x_all):
        raise ValueError(f"run_diagnose: batch {batch} exceeds the {len(x_all)} training "
                         f"samples of {dataset}")
    idx = np.sort(rng.choice(len(x_all), batch, replace=False))
    x, y = x_all[idx].astype(np.float32), y_all[idx].astype(np.int64)
    if normalize:
        # NOTE: zero mean, unit std over the batch, as the initialisation formulas assume.
        x = (x - x.mean()) / max(float(x.std()), 1e-12)
    return x, y, f"{dataset} train ({'standardised' if normalize else 'raw [0, 1]'})"


def run_diagnose(model: str | int = "mlp", depth: int = 10, width: int = 256,
                 activation: str | None = None, init: str = "he", *, batch: int = 256,
                 data_dir=None, synthetic: bool = False, dataset: str = "mnist",
                 download: bool = False, seed: int | None = 0, lr: float = DEFAULT_LR,
                 init_std: float = 1.0, normalize: bool = True, train: bool = True) -> Report:
    """Build a model, take one batch and inspect it: the whole of ``deepgrad diagnose``.

    Args:
        model, depth, width, activation, init, init_std: as :func:`build_diagnose_model`.
        batch: number of samples.
        data_dir: root holding the data set's IDX files (e.g. ``../shared/datasets``); not
            needed with ``synthetic``.
        synthetic: use N(0, 1) inputs of MNIST's shape and uniform random labels.
        dataset: MNIST-family name for ``load_arrays`` (``mnist``, ``fashion-mnist``,
            ``kmnist``).
        download: fetch missing data files.
        seed: seeds the global generator (the weights) and picks the batch; None leaves the
            generator as it is.
        lr: learning rate for the update ratios.
        normalize: standardise the image batch to zero mean and unit std.
        train: inspect in train mode (see :func:`inspect`).

    Returns:
        The :class:`Report`; ``report.meta`` holds this configuration.

    Raises:
        ValueError: for a bad option or batch size; FileNotFoundError (missing data files)
            and ValueError (corrupt files) from ``load_arrays``.
    """
    batch = _positive("batch", batch)
    if seed is not None:
        manual_seed(seed)
    net = build_diagnose_model(model, width, activation, init, depth=depth, init_std=init_std)
    rng = np.random.default_rng(seed)
    x, y, source = _batch(batch, data_dir, synthetic, dataset, download, rng, normalize)
    report = inspect(net, x, y, lr=lr, train=train)
    is_mlp = not isinstance(model, str) or model.lower() == "mlp"
    meta = {"model": "mlp" if is_mlp else model}
    if is_mlp:
        meta.update(depth=depth if isinstance(model, str) else int(model), width=width,
                    activation=(activation or "relu").lower())
    meta.update(init=init, init_std=init_std if init == "normal" else None, data=source,
                seed=seed)
    report.meta = meta
    return report
