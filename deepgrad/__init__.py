"""deepgrad: a readable deep learning library on NumPy with a PyTorch-style API.

Quick tour::

    import deepgrad as dg
    from deepgrad import nn, optim
    import deepgrad.nn.functional as F

    x = dg.randn(4, 3, requires_grad=True)
    loss = (x.tanh() ** 2).sum()
    loss.backward()          # x.grad now holds d loss / dx
"""

from deepgrad import _memory, autograd
from deepgrad._dtype import (
    bool_,
    float16,
    float32,
    float64,
    get_default_dtype,
    int32,
    int64,
    set_default_dtype,
    uint8,
)
from deepgrad._parallel import get_num_threads, set_num_threads
from deepgrad._random import get_rng_state, manual_seed, set_rng_state
from deepgrad.autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from deepgrad.ops import (
    abs,
    amax,
    amin,
    argmax,
    argmin,
    cat,
    clamp,
    exp,
    flatten,
    log,
    log1p,
    log_softmax,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    norm,
    permute,
    reshape,
    sigmoid,
    sign,
    softmax,
    split,
    sqrt,
    squeeze,
    stack,
    std,
    sum,
    tanh,
    transpose,
    unbind,
    unsqueeze,
    var,
    where,
)
from deepgrad.tensor import (
    Tensor,
    arange,
    empty,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)

__version__ = "0.1.0"

_memory.keep_freed_memory()

__all__ = [
    "Tensor",
    "__version__",
    "abs",
    "allclose",
    "amax",
    "amin",
    "arange",
    "argmax",
    "argmin",
    "autograd",
    "bool_",
    "cat",
    "clamp",
    "clip",
    "empty",
    "enable_grad",
    "exp",
    "eye",
    "flatten",
    "float16",
    "float32",
    "float64",
    "from_numpy",
    "full",
    "full_like",
    "get_default_dtype",
    "get_num_threads",
    "get_rng_state",
    "int32",
    "int64",
    "is_grad_enabled",
    "is_tensor",
    "linspace",
    "log",
    "log1p",
    "log_softmax",
    "logsumexp",
    "manual_seed",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "nn",
    "no_grad",
    "norm",
    "ones",
    "ones_like",
    "optim",
    "permute",
    "rand",
    "rand_like",
    "randint",
    "randn",
    "randn_like",
    "randperm",
    "relu",
    "relu as _relu",
    "reshape",
    "set_default_dtype",
    "set_num_threads",
    "set_grad_enabled",
    "set_rng_state",
    "sigmoid",
    "sign",
    "softmax",
    "split",
    "sqrt",
    "squeeze",
    "stack",
    "std",
    "sum",
    "tanh",
    "tensor",
    "transpose",
    "uint8",
    "unbind",
    "unsqueeze",
    "var",
    "where",
    "zeros",
    "zeros_like",
]


clip = clamp


def relu(x: Tensor) -> Tensor:
    """Rectified linear unit, max(x, 0)."""
    from deepgrad.ops import relu as _relu

    return _relu(x)


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def allclose(a, b, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
    import numpy as _np

    return bool(_np.allclose(_np.asarray(a), _np.asarray(b), rtol=rtol, atol=atol))
