"""``deepgrad.nn.functional`` (import as ``F``): stateless layers, activations and losses."""

from deepgrad.nn.functional.activation import (
    dropout,
    elu,
    leaky_relu,
    log_softmax,
    logsigmoid,
    relu,
    sigmoid,
    softmax,
    softplus,
    tanh,
)
from deepgrad.nn.functional.conv import (
    adaptive_avg_pool2d,
    adaptive_max_pool2d,
    avg_pool2d,
    conv2d,
    max_pool2d,
)
from deepgrad.nn.functional.dropout2d import dropout2d
from deepgrad.nn.functional.loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    huber_loss,
    l1_loss,
    mse_loss,
    nll_loss,
    smooth_l1_loss,
)
from deepgrad.nn.functional.norm import batch_norm, batch_norm_relu, layer_norm
from deepgrad.ops import linear, pad

__all__ = [
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "dropout", "elu",
    "huber_loss", "l1_loss", "leaky_relu", "linear", "log_softmax", "logsigmoid", "mse_loss",
    "nll_loss", "pad", "relu", "sigmoid", "smooth_l1_loss", "softmax", "softplus", "tanh",
    "adaptive_avg_pool2d", "adaptive_max_pool2d", "avg_pool2d", "conv2d", "max_pool2d",
    "batch_norm", "batch_norm_relu", "dropout2d", "layer_norm",
]
