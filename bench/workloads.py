"""The benchmark workloads: one full training step, built identically in deepgrad and torch.

A workload is a :class:`Workload` subclass listed in ``bench.registry.WORKLOADS``. Its
``build`` returns a :class:`Case`: two zero-argument step functions (zero_grad, forward, loss,
backward, optimizer step) computing the same thing from the same initial weights on the same
batches, and a ``parity`` check run once before timing. To add W2 (LeNet-5), W3 (ResNet-20),
W4 (LSTM), ...: write the class (models for both libraries, ``flops_per_step``) and add one
line to ``bench/registry.py``; the harness and the CLI need no change. W2-W7 live in
``bench/workloads_cnn.py``.

FLOP convention: ``flops_per_step`` = 3 x the forward GEMM (or convolution) FLOPs, 2 per
multiply-add (forward, input gradient, weight gradient). It slightly over-counts the first
layer, whose input gradient neither library computes; the same count is used for both.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.join(os.path.dirname(REPO), "shared", "datasets", "mnist")
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


# ---------------------------------------------------------------------------- data
def mnist_pool(n: int, data_dir: str | None = None, seed: int = 0):
    """``n`` MNIST test images, normalised float32 (n, 1, 28, 28), and int64 labels (n,).

    Falls back to Gaussian images with random labels when the files are absent (the step's
    cost does not depend on the pixel values); the returned ``source`` says which.
    """
    data_dir = data_dir or DEFAULT_DATA
    images = os.path.join(data_dir, "t10k-images-idx3-ubyte.gz")
    labels = os.path.join(data_dir, "t10k-labels-idx1-ubyte.gz")
    if os.path.exists(images) and os.path.exists(labels):
        from deepgrad.data.idx import read_idx

        x = read_idx(images)[:n].astype(np.float32) / 255.0
        x = ((x - MNIST_MEAN) / MNIST_STD).reshape(n, 1, 28, 28)
        y = read_idx(labels)[:n].astype(np.int64)
        return x, y, f"MNIST t10k[:{n}] ({data_dir})"
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, n).astype(np.int64)
    return x, y, "synthetic N(0,1) images, random labels"


# ---------------------------------------------------------------------------- interface
@dataclass
class Case:
    """A workload made ready to time.

    Attributes:
        deepgrad_step: one full training step in deepgrad (next batch of the pool).
        torch_step: the same step in torch.
        parity: run once before timing; returns a dict of differences and raises
            ``AssertionError`` when the two libraries disagree.
        data_source: where the batches came from.
        phases: optional, library name -> a function running one step and returning the
            seconds spent in each phase (zero_grad, forward, loss, backward, step); used by
            ``python -m bench.profile``.
    """

    deepgrad_step: Callable[[], None]
    torch_step: Callable[[], None]
    parity: Callable[[], dict]
    data_source: str
    phases: dict | None = None


class Workload:
    """Base class: subclasses set ``name``, ``title``, ``batch_size`` and implement the two
    methods."""

    name = ""
    title = ""
    batch_size = 0
    n_batches = 16  # a pool of distinct batches, cycled (no data loading inside the timing)

    def flops_per_step(self) -> float:
        raise NotImplementedError

    def build(self, data_dir: str | None = None, seed: int = 0) -> Case:
        raise NotImplementedError


def copy_weights(dg_model, torch_model) -> None:
    """Load deepgrad's parameters into the torch model (same state_dict keys, PARITY)."""
    import torch

    sd = {k: torch.from_numpy(np.array(v.data, copy=True)) for k, v in
          dg_model.state_dict().items()}
    torch_model.load_state_dict(sd, strict=True)


def max_param_diff(dg_model, torch_model) -> float:
    tsd = torch_model.state_dict()
    return max(float(np.max(np.abs(v.data - tsd[k].detach().numpy())))
               for k, v in dg_model.state_dict().items())


def classifier_case(dg_model, torch_model, x, y, batch_size: int, n_batches: int, lr: float,
                    momentum: float, source: str, parity_steps: int = 3,
                    tol: float = 1e-4, optimizer: str = "sgd", loss_tol: float | None = None
                    ) -> Case:
    """Build a Case for a classifier trained with cross-entropy and SGD(momentum) (or Adam,
    ``optimizer="adam"``, with ``lr`` and default betas/eps; ``momentum`` is then unused).

    ``x`` holds ``n_batches * batch_size`` samples already shaped for the model's input.
    Parity passes when the loss differs by less than ``loss_tol`` (default ``10 * tol``) and
    every parameter and buffer by less than ``tol`` after ``parity_steps`` steps.
    """
    import torch

    import deepgrad as dg
    import deepgrad.nn.functional as F
    from deepgrad import optim

    copy_weights(dg_model, torch_model)
    if optimizer == "adam":
        dg_opt = optim.Adam(dg_model.parameters(), lr=lr)
        t_opt = torch.optim.Adam(torch_model.parameters(), lr=lr)
    else:
        dg_opt = optim.SGD(dg_model.parameters(), lr=lr, momentum=momentum)
        t_opt = torch.optim.SGD(torch_model.parameters(), lr=lr, momentum=momentum)
    loss_tol = 10 * tol if loss_tol is None else loss_tol
    dg_model.train()
    torch_model.train()
    xs = np.split(x, n_batches)
    ys = np.split(y, n_batches)
    dg_batches = itertools.cycle([(dg.from_numpy(a), dg.from_numpy(b)) for a, b in zip(xs, ys)])
    t_batches = itertools.cycle([(torch.from_numpy(a), torch.from_numpy(b))
                                 for a, b in zip(xs, ys)])
    ce = torch.nn.functional.cross_entropy

    def deepgrad_step():
        xb, yb = next(dg_batches)
        dg_opt.zero_grad()
        loss = F.cross_entropy(dg_model(xb), yb)
        loss.backward()
        dg_opt.step()
        return loss

    def torch_step():
        xb, yb = next(t_batches)
        t_opt.zero_grad()
        loss = ce(torch_model(xb), yb)
        loss.backward()
        t_opt.step()
        return loss

    def parity() -> dict:
        loss_diff = 0.0
        for _ in range(parity_steps):
            ld, lt = deepgrad_step().item(), torch_step().item()
            loss_diff = max(loss_diff, abs(ld - lt))
        pdiff = max_param_diff(dg_model, torch_model)
        out = {"steps": parity_steps, "max_loss_diff": loss_diff, "max_param_diff": pdiff}
        if not (loss_diff < loss_tol and pdiff < tol):
            raise AssertionError(f"deepgrad and torch disagree after {parity_steps} steps: {out}")
        return out

    def phased(opt, model, batches, loss_fn):
        def run() -> dict:
            xb, yb = next(batches)
            t0 = time.perf_counter()
            opt.zero_grad()
            t1 = time.perf_counter()
            out = model(xb)
            t2 = time.perf_counter()
            loss = loss_fn(out, yb)
            t3 = time.perf_counter()
            loss.backward()
            t4 = time.perf_counter()
            opt.step()
            t5 = time.perf_counter()
            return {"zero_grad": t1 - t0, "forward": t2 - t1, "loss": t3 - t2,
                    "backward": t4 - t3, "step": t5 - t4}
        return run

    phases = {"deepgrad": phased(dg_opt, dg_model, dg_batches, F.cross_entropy),
              "torch": phased(t_opt, torch_model, t_batches, ce)}
    return Case(deepgrad_step, torch_step, parity, source, phases)


# ---------------------------------------------------------------------------- W1
class MLP(Workload):
    """W1: MLP 784-512-256-10 with ReLU, batch 128, cross-entropy, SGD(lr 0.01, momentum 0.9)."""

    name = "W1"
    title = "MLP 784-512-256-10"
    batch_size = 128
    sizes = (784, 512, 256, 10)

    def flops_per_step(self) -> float:
        fwd = sum(2.0 * self.batch_size * a * b for a, b in zip(self.sizes, self.sizes[1:]))
        return 3.0 * fwd

    def _layers(self, nn):
        layers = []
        for i, (a, b) in enumerate(zip(self.sizes, self.sizes[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(self.sizes) - 2:
                layers.append(nn.ReLU())
        return nn.Sequential(*layers)

    def build(self, data_dir: str | None = None, seed: int = 0) -> Case:
        import torch

        import deepgrad as dg
        from deepgrad import nn

        dg.manual_seed(seed)
        dg_model = self._layers(nn)
        torch_model = self._layers(torch.nn)
        n = self.batch_size * self.n_batches
        x, y, source = mnist_pool(n, data_dir, seed)
        x = np.ascontiguousarray(x.reshape(n, -1))
        return classifier_case(dg_model, torch_model, x, y, self.batch_size, self.n_batches,
                               lr=0.01, momentum=0.9, source=source)
