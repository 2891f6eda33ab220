"""``LSTM`` (multi-layer, optionally bidirectional) and ``LSTMCell``.

The recurrence itself is the fused primitive :func:`deepgrad.ops.rnn.lstm_layer` (one graph node
per layer and direction); these modules hold the parameters under PyTorch's names and shapes and
arrange layers, directions, dropout and the batch layout.
"""

from __future__ import annotations

import math

import numpy as np

from deepgrad import _dtype
from deepgrad.nn import init
from deepgrad.nn.functional.activation import dropout as _dropout
from deepgrad.nn.modules.module import Module, Parameter
from deepgrad.ops.rnn import lstm_cell, lstm_layer
from deepgrad.ops.shape import cat, squeeze, stack, transpose, unsqueeze
from deepgrad.tensor import Tensor


def _positive_int(owner: str, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}")
    return int(value)


def _check_state(owner: str, name: str, t: Tensor, expected: tuple) -> None:
    if tuple(t.shape) != expected:
        raise ValueError(f"{owner}: expected {name} of shape {expected}, got {tuple(t.shape)}")


class LSTM(Module):
    """A multi-layer long short-term memory RNN over a sequence.

    For each layer and step (gate order i, f, g, o as PyTorch; sigma the logistic function):
        i = sigma(W_ii x + b_ii + W_hi h + b_hi),  f = sigma(W_if x + b_if + W_hf h + b_hf)
        g = tanh(W_ig x + b_ig + W_hg h + b_hg),   o = sigma(W_io x + b_io + W_ho h + b_ho)
        c' = f * c + i * g,                        h' = o * tanh(c')
    Layer k > 0 takes the hidden states of layer k - 1 as input, after dropout (training only).

    Args:
        input_size: features of each input step.
        hidden_size: features of the hidden and cell states.
        num_layers: stacked LSTM layers.
        bias: learn b_ih and b_hh.
        batch_first: input and output are (B, T, F) instead of (T, B, F).
        dropout: dropout probability on each layer's output except the last.
        bidirectional: also run each layer from the last step to the first and concatenate.
        proj_size: only 0 is supported.

    Shape:
        input (T, B, input_size), (B, T, input_size) with batch_first, or unbatched
        (T, input_size); optional hx = (h_0, c_0), each (D * num_layers, B, hidden_size)
        (or (D * num_layers, hidden_size) unbatched), D = 2 if bidirectional else 1.
        Returns output (T, B, D * hidden_size) and (h_n, c_n) shaped like (h_0, c_0).

    Parameters (PyTorch's names; suffix ``_reverse`` for the backward direction):
        weight_ih_l{k} (4 * hidden_size, input_size or D * hidden_size),
        weight_hh_l{k} (4 * hidden_size, hidden_size), bias_ih_l{k}, bias_hh_l{k}
        (4 * hidden_size,), all initialised U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)).

    Reference: Hochreiter & Schmidhuber 1997, "Long Short-Term Memory"; Gers et al. 2000,
    "Learning to Forget: Continual Prediction with LSTM".
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, dtype=None):
        super().__init__()
        self.input_size = _positive_int("LSTM", "input_size", input_size)
        self.hidden_size = _positive_int("LSTM", "hidden_size", hidden_size)
        self.num_layers = _positive_int("LSTM", "num_layers", num_layers)
        if isinstance(dropout, bool) or not 0.0 <= dropout <= 1.0:
            raise ValueError(f"LSTM: dropout must be a number in [0, 1], got {dropout!r}")
        if proj_size != 0:
            raise NotImplementedError("LSTM: proj_size > 0 (LSTM with projections) is not "
                                      "supported; use proj_size=0")
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.proj_size = 0
        dt = _dtype.get_default_dtype() if dtype is None else _dtype.to_numpy_dtype(dtype)
        gate = 4 * self.hidden_size
        dirs = 2 if self.bidirectional else 1
        self._flat_weights_names = []
        for layer in range(self.num_layers):
            in_size = self.input_size if layer == 0 else dirs * self.hidden_size
            for suffix in ("", "_reverse")[:dirs]:
                shapes = [("weight_ih", (gate, in_size)), ("weight_hh", (gate, self.hidden_size))]
                if self.bias:
                    shapes += [("bias_ih", (gate,)), ("bias_hh", (gate,))]
                for base, shape in shapes:
                    name = f"{base}_l{layer}{suffix}"
                    self.register_parameter(name, Parameter(np.empty(shape, dtype=dt)))
                    self._flat_weights_names.append(name)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PARITY: every weight and bias ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    @property
    def all_weights(self) -> list:
        """Parameters grouped per layer and direction: [[w_ih, w_hh, b_ih, b_hh], ...]."""
        per = 4 if self.bias else 2
        flat = [getattr(self, n) for n in self._flat_weights_names]
        return [flat[k:k + per] for k in range(0, len(flat), per)]

    def _layer_params(self, layer: int, suffix: str):
        get = self._parameters.get
        return (get(f"weight_ih_l{layer}{suffix}"), get(f"weight_hh_l{layer}{suffix}"),
                get(f"bias_ih_l{layer}{suffix}"), get(f"bias_hh_l{layer}{suffix}"))

    def forward(self, input: Tensor, hx: tuple | None = None):
        if input.ndim not in (2, 3):
            raise ValueError(f"LSTM: Expected input to be 2D or 3D, got {input.ndim}D instead "
                             f"(shape {tuple(input.shape)})")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"LSTM: input.size(-1) must be equal to input_size. Expected "
                             f"{self.input_size}, got {input.shape[-1]} (input shape "
                             f"{tuple(input.shape)})")
        if input.shape[1 if self.batch_first and input.ndim == 3 else 0] == 0:
            raise ValueError(f"LSTM: Expected sequence length to be larger than 0, got input of "
                             f"shape {tuple(input.shape)}")
        batched = input.ndim == 3
        x = input
        if not batched:
            x = unsqueeze(x, 1)
        elif self.batch_first:
            x = transpose(x, 0, 1)
        batch = x.shape[1]
        dirs = 2 if self.bidirectional else 1
        state_shape = (self.num_layers * dirs, batch, self.hidden_size)
        h0 = c0 = None
        if hx is not None:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise ValueError("LSTM: hx must be a tuple (h_0, c_0)")
            h0, c0 = hx
            want = state_shape if batched else (state_shape[0], state_shape[2])
            _check_state("LSTM", "h_0", h0, want)
            _check_state("LSTM", "c_0", c0, want)
            if not batched:
                h0, c0 = unsqueeze(h0, 1), unsqueeze(c0, 1)
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs = []
            for d, suffix in enumerate(("", "_reverse")[:dirs]):
                k = layer * dirs + d
                w_ih, w_hh, b_ih, b_hh = self._layer_params(layer, suffix)
                out, h, c = lstm_layer(x, None if h0 is None else h0[k],
                                       None if c0 is None else c0[k], w_ih, w_hh, b_ih, b_hh,
                                       reverse=d == 1)
                outs.append(out)
                h_n.append(h)
                c_n.append(c)
            x = outs[0] if dirs == 1 else cat(outs, 2)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = _dropout(x, self.dropout, True)
        h_n, c_n = stack(h_n, 0), stack(c_n, 0)
        if not batched:
            return squeeze(x, 1), (squeeze(h_n, 1), squeeze(c_n, 1))
        if self.batch_first:
            x = transpose(x, 0, 1)
        return x, (h_n, c_n)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class LSTMCell(Module):
    """One LSTM step: (x, (h, c)) -> (h', c'), with the equations of :class:`LSTM`.

    Args:
        input_size: features of the input.
        hidden_size: features of the hidden and cell states.
        bias: learn b_ih and b_hh.

    Shape:
        input (B, input_size) or (input_size,); hx = (h, c), each (B, hidden_size) or
        (hidden_size,), zeros if omitted. Returns (h', c') of the same shape.

    Parameters: weight_ih (4 * hidden_size, input_size), weight_hh (4 * hidden_size,
    hidden_size), bias_ih, bias_hh (4 * hidden_size,), gate order i, f, g, o, all
    U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)) as PyTorch.

    Reference: Hochreiter & Schmidhuber 1997, "Long Short-Term Memory".
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype=None):
        super().__init__()
        self.input_size = _positive_int("LSTMCell", "input_size", input_size)
        self.hidden_size = _positive_int("LSTMCell", "hidden_size", hidden_size)
        self.bias = bool(bias)
        dt = _dtype.get_default_dtype() if dtype is None else _dtype.to_numpy_dtype(dtype)
        gate = 4 * self.hidden_size
        self.weight_ih = Parameter(np.empty((gate, self.input_size), dtype=dt))
        self.weight_hh = Parameter(np.empty((gate, self.hidden_size), dtype=dt))
        if self.bias:
            self.bias_ih = Parameter(np.empty(gate, dtype=dt))
            self.bias_hh = Parameter(np.empty(gate, dtype=dt))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def forward(self, input: Tensor, hx: tuple | None = None):
        if input.ndim not in (1, 2):
            raise ValueError(f"LSTMCell: Expected input to be 1D or 2D, got {input.ndim}D "
                             f"instead (shape {tuple(input.shape)})")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"LSTMCell: input has {input.shape[-1]} features (shape "
                             f"{tuple(input.shape)}), expected input_size={self.input_size}")
        batched = input.ndim == 2
        x = input if batched else unsqueeze(input, 0)
        h = c = None
        if hx is not None:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise ValueError("LSTMCell: hx must be a tuple (h, c)")
            h, c = hx
            want = (x.shape[0], self.hidden_size) if batched else (self.hidden_size,)
            _check_state("LSTMCell", "h", h, want)
            _check_state("LSTMCell", "c", c, want)
            if not batched:
                h, c = unsqueeze(h, 0), unsqueeze(c, 0)
        h1, c1 = lstm_cell(x, h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        if not batched:
            return squeeze(h1, 0), squeeze(c1, 0)
        return h1, c1

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")
