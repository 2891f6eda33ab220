"""The primitives: the only place in deepgrad with backward code (DESIGN rule 1)."""

from deepgrad.ops.conv import conv2d
from deepgrad.ops.elementwise import (
    abs,
    add,
    add_relu,
    cast,
    clamp,
    clone,
    div,
    elu,
    exp,
    leaky_relu,
    log,
    log1p,
    logsigmoid,
    maximum,
    minimum,
    mul,
    neg,
    pow,
    relu,
    sigmoid,
    sign,
    softplus,
    sqrt,
    sub,
    tanh,
    where,
)
from deepgrad.ops.linalg import linear, matmul
from deepgrad.ops.nn_ops import binary_cross_entropy_elementwise, cross_entropy_logits
from deepgrad.ops.normalization import batch_norm_eval, batch_norm_train, layer_norm
from deepgrad.ops.pool import (
    adaptive_avg_pool2d,
    adaptive_max_pool2d,
    avg_pool2d,
    max_pool2d,
)
from deepgrad.ops.reduce import (
    amax,
    amin,
    argmax,
    argmin,
    log_softmax,
    logsumexp,
    max,
    mean,
    min,
    norm,
    softmax,
    std,
    sum,
    var,
)
from deepgrad.ops.rnn import lstm_cell, lstm_layer
from deepgrad.ops.shape import (
    cat,
    expand,
    flatten,
    getitem,
    movedim,
    pad,
    permute,
    reshape,
    split,
    squeeze,
    stack,
    sum_to,
    transpose,
    unbind,
    unsqueeze,
)

__all__ = [
    "abs", "add", "add_relu", "amax", "amin", "argmax", "argmin",
    "binary_cross_entropy_elementwise", "cast", "cat", "clamp", "clone",
    "cross_entropy_logits", "div", "elu", "exp", "expand", "flatten", "getitem", "leaky_relu",
    "linear", "log", "log1p", "log_softmax", "logsigmoid", "logsumexp", "matmul", "max",
    "maximum", "mean", "min", "minimum", "movedim", "mul", "neg", "norm", "pad", "permute",
    "pow", "relu", "reshape", "sigmoid", "sign", "softmax", "softplus", "split", "sqrt",
    "squeeze", "stack", "std", "sub", "sum", "sum_to", "tanh", "transpose", "unbind",
    "unsqueeze", "var", "where",
    "conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d",
    "batch_norm_eval", "batch_norm_train", "layer_norm", "lstm_cell", "lstm_layer",
]
