"""The primitives: the only place in deepgrad with backward code (DESIGN rule 1)."""

from deepgrad.ops.elementwise import (
    abs, add, cast, clamp, clone, div, elu, exp, leaky_relu, log, log1p, logsigmoid, maximum,
    minimum, mul, neg, pow, relu, sigmoid, sign, softplus, sqrt, sub, tanh, where,
)
from deepgrad.ops.linalg import linear, matmul
from deepgrad.ops.nn_ops import cross_entropy_logits
from deepgrad.ops.reduce import (
    amax, amin, argmax, argmin, logsumexp, log_softmax, max, mean, min, norm, softmax, std, sum,
    var,
)
from deepgrad.ops.shape import (
    cat, expand, flatten, getitem, movedim, pad, permute, reshape, split, squeeze, stack,
    sum_to, transpose, unbind, unsqueeze,
)

__all__ = [
    "abs", "add", "amax", "amin", "argmax", "argmin", "cast", "cat", "clamp", "clone",
    "cross_entropy_logits", "div", "elu", "exp", "expand", "flatten", "getitem", "leaky_relu",
    "linear", "log", "log1p", "log_softmax", "logsigmoid", "logsumexp", "matmul", "max",
    "maximum", "mean", "min", "minimum", "movedim", "mul", "neg", "norm", "pad", "permute",
    "pow", "relu", "reshape", "sigmoid", "sign", "softmax", "softplus", "split", "sqrt",
    "squeeze", "stack", "std", "sub", "sum", "sum_to", "tanh", "transpose", "unbind",
    "unsqueeze", "var", "where",
]
