"""Workloads W2-W7: LeNet-5, ResNet-20 and LSTM training steps, BatchNorm2d and conv
layers forward+backward, and inference; each with a torch twin built from the same weights.
"""

from __future__ import annotations

import itertools

import numpy as np

from bench.workloads import (
    Case,
    Workload,
    classifier_case,
    copy_weights,
    max_param_diff,
    mnist_pool,
)


# ---------------------------------------------------------------------------- helpers (W2-W7)
def _random_pool(n: int, shape: tuple, seed: int = 0, classes: int = 10):
    """Gaussian float32 inputs (n, *shape) and random int64 labels: the step's cost does not
    depend on the values."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *shape), dtype=np.float32)
    y = rng.integers(0, classes, n).astype(np.int64)
    return x, y, f"synthetic N(0,1) {'x'.join(map(str, shape))} inputs, random labels"


def _conv_macs(cin: int, cout: int, k: int, h_out: int, w_out: int) -> float:
    """Multiply-adds of one Conv2d (groups 1) per sample."""
    return float(cout * h_out * w_out * cin * k * k)


def lenet5_macs() -> float:
    """Forward multiply-adds of LeNet-5 per 1x28x28 sample (conv1 padded: 28 -> 14 -> 10 -> 5)."""
    return (_conv_macs(1, 6, 5, 28, 28) + _conv_macs(6, 16, 5, 10, 10)
            + 400 * 120 + 120 * 84 + 84 * 10)


def resnet20_macs() -> float:
    """Forward multiply-adds of the CIFAR ResNet-20 per 3x32x32 sample (convs + fc; the
    option-A shortcut, BN, ReLU and pooling are not counted)."""
    macs = _conv_macs(3, 16, 3, 32, 32)
    for cin, cout, size in ((16, 16, 32), (16, 32, 16), (32, 64, 8)):
        macs += _conv_macs(cin, cout, 3, size, size)          # first conv (maybe strided)
        macs += 5 * _conv_macs(cout, cout, 3, size, size)     # the other five
    return macs + 64 * 10


def lenet5_pair():
    """deepgrad's registry LeNet-5 and a torch twin with the same layers and state_dict keys."""
    import torch.nn as tnn

    import deepgrad.models as M

    dg_model = M.get_model("lenet5", input_shape=(1, 28, 28), num_classes=10)

    class TorchLeNet5(tnn.Module):
        def __init__(self):
            super().__init__()
            self.features = tnn.Sequential(
                tnn.Conv2d(1, 6, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2, 2),
                tnn.Conv2d(6, 16, 5), tnn.ReLU(), tnn.MaxPool2d(2, 2))
            self.flatten = tnn.Flatten()
            self.classifier = tnn.Sequential(
                tnn.Linear(400, 120), tnn.ReLU(), tnn.Linear(120, 84), tnn.ReLU(),
                tnn.Linear(84, 10))

        def forward(self, x):
            return self.classifier(self.flatten(self.features(x)))

    return dg_model, TorchLeNet5()


def resnet20_pair():
    """deepgrad's registry ResNet-20 (option A) and a torch twin with the same keys."""
    import torch
    import torch.nn as tnn

    import deepgrad.models as M

    dg_model = M.get_model("resnet20", input_shape=(3, 32, 32), num_classes=10)

    class PadShortcut(tnn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.cin, self.cout, self.stride = cin, cout, stride

        def forward(self, x):
            if self.stride != 1:
                x = x[:, :, ::self.stride, ::self.stride]
            lo = (self.cout - self.cin) // 2
            hi = self.cout - self.cin - lo
            return torch.nn.functional.pad(x, (0, 0, 0, 0, lo, hi)) if lo or hi else x

    class Block(tnn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(cout)
            self.relu = tnn.ReLU()
            self.conv2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(cout)
            self.downsample = (None if stride == 1 and cin == cout
                               else PadShortcut(cin, cout, stride))

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            identity = x if self.downsample is None else self.downsample(x)
            return self.relu(out + identity)

    class TorchResNet20(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(16)
            self.relu = tnn.ReLU()
            stages = []
            for cin, cout, stride in ((16, 16, 1), (16, 32, 2), (32, 64, 2)):
                stages.append(tnn.Sequential(Block(cin, cout, stride),
                                             *(Block(cout, cout, 1) for _ in range(2))))
            self.layer1, self.layer2, self.layer3 = stages
            self.avgpool = tnn.AdaptiveAvgPool2d(1)
            self.flatten = tnn.Flatten()
            self.fc = tnn.Linear(64, 10)

        def forward(self, x):
            x = self.relu(self.bn1(self.conv1(x)))
            x = self.layer3(self.layer2(self.layer1(x)))
            return self.fc(self.flatten(self.avgpool(x)))

    return dg_model, TorchResNet20()


# ---------------------------------------------------------------------------- W2, W3
class LeNet5Train(Workload):
    """W2: LeNet-5 on MNIST, batch 128, cross-entropy, Adam(lr 1e-3)."""

    name = "W2"
    title = "LeNet-5 train (Adam)"
    batch_size = 128

    def flops_per_step(self) -> float:
        return 3.0 * 2.0 * self.batch_size * lenet5_macs()

    def build(self, data_dir: str | None = None, seed: int = 0) -> Case:
        import deepgrad as dg

        dg.manual_seed(seed)
        dg_model, torch_model = lenet5_pair()
        n = self.batch_size * self.n_batches
        x, y, source = mnist_pool(n, data_dir, seed)
        return classifier_case(dg_model, torch_model, x, y, self.batch_size, self.n_batches,
                               lr=1e-3, momentum=0.0, source=source, optimizer="adam")


class ResNet20Train(Workload):
    """W3: ResNet-20 (option A), batch 128 of random 3x32x32, train-mode BN, SGD(0.1, 0.9)."""

    name = "W3"
    title = "ResNet-20 train (SGD m0.9)"
    batch_size = 128
    n_batches = 4

    def flops_per_step(self) -> float:
        return 3.0 * 2.0 * self.batch_size * resnet20_macs()

    def build(self, data_dir: str | None = None, seed: int = 0) -> Case:
        import deepgrad as dg

        dg.manual_seed(seed)
        dg_model, torch_model = resnet20_pair()
        n = self.batch_size * self.n_batches
        x, y, source = _random_pool(n, (3, 32, 32), seed)
        # Ill-conditioned in float32: with random inputs/labels the BN backward cancels, and
        # at the first layers *both* libraries' float32 gradients are 1e-3..5e-3 (relative)
        # away from a float64 torch reference (measured); lr 0.1 + momentum then grows the
        # difference to ~1e-3 in conv1.weight after 3 steps. Hence the looser tolerance.
        return classifier_case(dg_model, torch_model, x, y, self.batch_size, self.n_batches,
                               lr=0.1, momentum=0.9, source=source, tol=5e-3,
                               loss_tol=1e-3)


# ---------------------------------------------------------------------------- W4
class LSTMTrain(Workload):
    """W4: LSTM 28->128 over the 28 rows of an MNIST digit, Linear(128, 10) on the last
    hidden state, batch 128, cross-entropy, SGD(lr 0.01, momentum 0.9)."""

    name = "W4"
    title = "LSTM 28->128 x28 steps + Linear (SGD m0.9)"
    batch_size = 128
    steps, inp, hidden = 28, 28, 128

    def flops_per_step(self) -> float:
        per_sample = self.steps * 4 * self.hidden * (self.inp + self.hidden) + self.hidden * 10
        return 3.0 * 2.0 * self.batch_size * per_sample

    def build(self, data_dir: str | None = None, seed: int = 0) -> Case:
        import torch.nn as tnn

        import deepgrad as dg
        from deepgrad import nn

        inp, hidden = self.inp, self.hidden

        class DgRNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = nn.LSTM(inp, hidden, batch_first=True)
                self.fc = nn.Linear(hidden, 10)

            def forward(self, x):
                out, _ = self.lstm(x)
                return self.fc(out[:, -1])

        class TorchRNN(tnn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = tnn.LSTM(inp, hidden, batch_first=True)
                self.fc = tnn.Linear(hidden, 10)

            def forward(self, x):
                out, _ = self.lstm(x)
                return self.fc(out[:, -1])

        dg.manual_seed(seed)
        n = self.batch_size * self.n_batches
        x, y, source = mnist_pool(n, data_dir, seed)
        x = np.ascontiguousarray(x.reshape(n, self.steps, self.inp))
        return classifier_case(DgRNN(), TorchRNN(), x, y, self.batch_size, self.n_batches,
                               lr=0.01, momentum=0.9, source=source)


# ---------------------------------------------------------------------------- W5, W6
class _LayerFwdBwd(Workload):
    """Forward + backward of one layer on a fixed input with a fixed random upstream
    gradient (the same arrays for both libraries); gradients of the input and the layer's
    parameters are computed (grads are reset to None before each step)."""

    shape = (128, 64, 32, 32)
    n_batches = 1
    tol = 1e-4

    def _layers(self):
        raise NotImplementedError

    def build(self, data_dir: str | None = None, seed: int = 0) -> Case:
        import torch

        import deepgrad as dg

        dg.manual_seed(seed)
        dg_layer, t_layer = self._layers()
        copy_weights(dg_layer, t_layer)
        dg_layer.train()
        t_layer.train()
        rng = np.random.default_rng(seed)
        x = rng.standard_normal(self.shape, dtype=np.float32)
        g = rng.standard_normal(self.shape, dtype=np.float32)  # both layers keep the shape
        dx = dg.from_numpy(x).requires_grad_()
        dgo = dg.from_numpy(g)
        tx = torch.from_numpy(x.copy()).requires_grad_()
        tgo = torch.from_numpy(g)

        def deepgrad_step():
            dx.grad = None
            dg_layer.zero_grad()
            out = dg_layer(dx)
            out.backward(dgo)
            return out

        def torch_step():
            tx.grad = None
            t_layer.zero_grad(set_to_none=True)
            out = t_layer(tx)
            out.backward(tgo)
            return out

        def parity() -> dict:
            diffs = {}
            for _ in range(3):
                od, ot = deepgrad_step(), torch_step()
                scale = max(1.0, float(np.max(np.abs(ot.detach().numpy()))))
                diffs["max_out_diff"] = max(diffs.get("max_out_diff", 0.0), float(
                    np.max(np.abs(od.detach().numpy() - ot.detach().numpy()))) / scale)
            gd = {"input": dx.grad.numpy()}
            gt = {"input": tx.grad.numpy()}
            for (k, p), (_, tp) in zip(dg_layer.named_parameters(), t_layer.named_parameters()):
                gd[k], gt[k] = p.grad.numpy(), tp.grad.numpy()
            for k in gd:
                scale = max(1.0, float(np.max(np.abs(gt[k]))))
                diffs[f"max_grad_diff_{k}"] = float(np.max(np.abs(gd[k] - gt[k]))) / scale
            diffs["max_param_buffer_diff"] = max_param_diff(dg_layer, t_layer)
            out = {"steps": 3, "relative_to": "max(1, max|torch value|)", **diffs}
            if not all(v < self.tol for k, v in diffs.items()):
                raise AssertionError(f"deepgrad and torch disagree: {out}")
            return out

        return Case(deepgrad_step, torch_step, parity,
                    "synthetic N(0,1) input and upstream gradient")


class BatchNormFwdBwd(_LayerFwdBwd):
    """W5: BatchNorm2d(64), train mode, forward + backward on (128, 64, 32, 32) float32.

    Not a GEMM: ``flops_per_step`` is an elementwise count, about 8 FLOPs per element forward
    (sum, centred square, normalise, affine) and 10 backward (two reductions, input gradient),
    so its GFLOP/s mostly measures memory traffic."""

    name = "W5"
    title = "BatchNorm2d(64) fwd+bwd (128,64,32,32)"
    batch_size = 128

    def flops_per_step(self) -> float:
        return 18.0 * float(np.prod(self.shape))

    def _layers(self):
        import torch

        from deepgrad import nn

        return nn.BatchNorm2d(64), torch.nn.BatchNorm2d(64)


class ConvFwdBwd(_LayerFwdBwd):
    """W6: Conv2d(64, 64, 3, padding=1) with bias, forward + backward (input and weight
    gradients) on (128, 64, 32, 32) float32. FLOPs: 3 x the forward's 2 x MACs."""

    name = "W6"
    title = "Conv2d 3x3 64->64 p1 fwd+bwd (128,64,32,32)"
    batch_size = 128
    tol = 1e-4

    def flops_per_step(self) -> float:
        return 3.0 * 2.0 * self.batch_size * _conv_macs(64, 64, 3, 32, 32)

    def _layers(self):
        import torch

        from deepgrad import nn

        return nn.Conv2d(64, 64, 3, padding=1), torch.nn.Conv2d(64, 64, 3, padding=1)


# ---------------------------------------------------------------------------- W7
class _Inference(Workload):
    """Forward only, ``eval()`` and ``no_grad``, on a pool of distinct batches."""

    n_batches = 4
    tol = 1e-4

    def _pair(self):
        raise NotImplementedError

    def _data(self, n, data_dir, seed):
        raise NotImplementedError

    def _macs(self) -> float:
        raise NotImplementedError

    def flops_per_step(self) -> float:
        return 2.0 * self.batch_size * self._macs()  # forward only

    def build(self, data_dir: str | None = None, seed: int = 0) -> Case:
        import torch

        import deepgrad as dg

        dg.manual_seed(seed)
        dg_model, torch_model = self._pair()
        copy_weights(dg_model, torch_model)
        dg_model.eval()
        torch_model.eval()
        n = self.batch_size * self.n_batches
        x, _, source = self._data(n, data_dir, seed)
        xs = np.split(x, self.n_batches)
        dg_batches = itertools.cycle([dg.from_numpy(a) for a in xs])
        t_batches = itertools.cycle([torch.from_numpy(a) for a in xs])

        def deepgrad_step():
            with dg.no_grad():
                return dg_model(next(dg_batches))

        def torch_step():
            with torch.no_grad():
                return torch_model(next(t_batches))

        def parity() -> dict:
            diff = 0.0
            for _ in range(3):
                od, ot = deepgrad_step(), torch_step()
                if od.requires_grad:
                    raise AssertionError("deepgrad output requires grad under no_grad")
                diff = max(diff, float(np.max(np.abs(od.numpy() - ot.numpy()))))
            out = {"steps": 3, "max_logit_diff": diff,
                   "max_param_buffer_diff": max_param_diff(dg_model, torch_model)}
            if not (diff < self.tol and out["max_param_buffer_diff"] == 0.0):
                raise AssertionError(f"deepgrad and torch disagree: {out}")
            return out

        return Case(deepgrad_step, torch_step, parity, source)


class LeNet5Infer(_Inference):
    """W7a: LeNet-5 inference, batch 1000 MNIST, eval + no_grad."""

    name = "W7a"
    title = "LeNet-5 inference (no_grad)"
    batch_size = 1000

    def _pair(self):
        return lenet5_pair()

    def _data(self, n, data_dir, seed):
        return mnist_pool(n, data_dir, seed)

    def _macs(self) -> float:
        return lenet5_macs()


class ResNet20Infer(_Inference):
    """W7b: ResNet-20 inference, batch 256 of random 3x32x32, eval (running stats) + no_grad."""

    name = "W7b"
    title = "ResNet-20 inference (no_grad)"
    batch_size = 256
    tol = 1e-3

    def _pair(self):
        return resnet20_pair()

    def _data(self, n, data_dir, seed):
        return _random_pool(n, (3, 32, 32), seed)

    def _macs(self) -> float:
        return resnet20_macs()
