"""Activation functions: sigmoid gradients vanish with depth; ReLU-family networks converge
faster.

The derivative of the logistic sigmoid is sigma'(x) = sigma(x) (1 - sigma(x)) <= 1/4, so
each sigmoid layer multiplies the back-propagated gradient by at most 1/4 (times the weights'
gain): with depth the early layers' gradients vanish. tanh' <= 1 (and 1 at 0), ReLU' is 0 or 1,
LeakyReLU' 0.01 or 1, ELU' in (0, 1].
"""

from __future__ import annotations

import math

import numpy as np

from deepgrad import manual_seed, nn, optim
from deepgrad.lab.claims.init import layer_statistics
from deepgrad.lab.core import Claim, ClaimOutcome, LabContext
from deepgrad.lab.plots import group_curves, line_plot, new_figure
from deepgrad.lab.stats import paired_effect, runs_of, summarise
from deepgrad.lab.train import run_variant
from deepgrad.nn import init as nninit

#: name -> (module factory, init gain: PyTorch's calculate_gain; ELU takes ReLU's)
ACTIVATIONS = {
    "sigmoid": (nn.Sigmoid, 1.0),
    "tanh": (nn.Tanh, 5.0 / 3),
    "relu": (nn.ReLU, math.sqrt(2.0)),
    "leaky_relu": (nn.LeakyReLU, math.sqrt(2.0 / (1 + 0.01 ** 2))),
    "elu": (nn.ELU, math.sqrt(2.0)),
}


def activation_mlp(activation: str, depth: int, width: int) -> nn.Sequential:
    """784 -> depth x (Linear, activation) of ``width`` -> 10; Xavier-normal weights with the
    activation's recommended gain, zero biases."""
    factory, gain = ACTIVATIONS[activation]
    layers: list[nn.Module] = [nn.Flatten()]
    fan_in = 784
    for _ in range(depth):
        layers += [nn.Linear(fan_in, width), factory()]
        fan_in = width
    layers.append(nn.Linear(fan_in, 10))
    for m in layers:
        if isinstance(m, nn.Linear):
            nninit.xavier_normal_(m.weight, gain=gain if m.out_features != 10 else 1.0)
            nninit.zeros_(m.bias)
    return nn.Sequential(*layers)


def _geo_mean(values) -> float:
    v = np.asarray([x for x in values if x is not None and math.isfinite(x) and x > 0])
    return float(np.exp(np.mean(np.log(v)))) if v.size else math.nan


class ActivationsClaim(Claim):
    name = "activations"
    title = "Sigmoid gradients vanish with depth; ReLU-family networks train faster"
    statement = ("Because sigma' <= 1/4, the gradient reaching the early layers of a deep "
                 "sigmoid network is orders of magnitude smaller than at the top, and the "
                 "network trains far more slowly than with tanh, ReLU, LeakyReLU or ELU.")
    references = [
        "Glorot & Bengio 2010, Understanding the difficulty of training deep feedforward "
        "neural networks, AISTATS",
        "Glorot, Bordes & Bengio 2011, Deep Sparse Rectifier Neural Networks, AISTATS",
        "Maas, Hannun & Ng 2013, Rectifier Nonlinearities Improve Neural Network Acoustic "
        "Models (LeakyReLU)",
        "Clevert, Unterthiner & Hochreiter 2016, Fast and Accurate Deep Network Learning by "
        "Exponential Linear Units (ELUs), ICLR",
    ]

    def run(self, ctx: LabContext) -> ClaimOutcome:
        s = {
            "budget": ctx.budget, "seeds": ctx.seeds,
            "n_train": ctx.pick(1000, 20000, 60000), "n_test": ctx.pick(300, 1000, 10000),
            "depth": ctx.pick(5, 10, 10), "width": ctx.pick(32, 100, 256),
            "init": "Xavier normal with the activation's gain (sigmoid 1, tanh 5/3, ReLU/ELU "
                    "sqrt 2, LeakyReLU sqrt(2/(1+0.01^2))), zero biases",
            "optimizer": "SGD momentum 0.9", "lr": 0.01, "batch_size": 64,
            "steps": ctx.pick(30, 400, 4000), "grad_batch": ctx.pick(200, 1000, 1000),
            "vanishing_ratio_below": 0.1,
        }
        data = ctx.mnist(s["n_train"], s["n_test"])
        xb, yb = data.x_train[:s["grad_batch"]], data.y_train[:s["grad_batch"]]
        runs: list[dict] = []
        for act in ACTIVATIONS:
            ctx.progress(f"{act}: per-layer gradients at initialisation")
            grads = []
            for seed in ctx.seeds:
                manual_seed(seed)
                model = activation_mlp(act, s["depth"], s["width"])
                st = layer_statistics(model, xb, yb)
                grads.append(st)
                g = st["grad_norm"]
                runs.append({"variant": f"init-grads {act}", "seed": seed,
                             "curves": {"layer": list(range(1, len(g) + 1)), "grad_norm": g,
                                        "act_std": st["act_std"]},
                             "final": {"grad_ratio_first_last": g[0] / g[-1] if g[-1] else
                                       math.nan}})
            runs += run_variant(
                ctx, act,
                lambda seed, act=act: (m := activation_mlp(act, s["depth"], s["width"]),
                                       optim.SGD(m.parameters(), lr=s["lr"], momentum=0.9)),
                data, steps=s["steps"], batch_size=s["batch_size"],
                eval_every=ctx.pick(10, 25, 200))
        verdict, notes = self._verdict(runs, s)
        return ClaimOutcome(settings=s, runs=runs, verdict=verdict,
                            figures=self._figures(runs, s), notes=notes)

    def _verdict(self, runs, s) -> tuple[dict, list[str]]:
        ratio = {a: _geo_mean(r["final"]["grad_ratio_first_last"]
                              for r in runs_of(runs, f"init-grads {a}")) for a in ACTIVATIONS}
        others = [a for a in ACTIVATIONS if a != "sigmoid"]
        vanishes = (ratio["sigmoid"] < s["vanishing_ratio_below"]
                    and all(ratio["sigmoid"] < ratio[a] for a in others))

        def loss_by_seed(a):  # the mean training loss over the run: lower = converged sooner
            return {r["seed"]: float(np.nanmean(r["curves"]["train_loss"]))
                    if not r["final"]["diverged"] else math.inf for r in runs_of(runs, a)}

        area = {a: summarise(loss_by_seed(a).values())["mean"] for a in ACTIVATIONS}
        final = {a: summarise(r["final"]["train_loss"] for r in runs_of(runs, a))["mean"]
                 for a in ACTIVATIONS}
        acc = {a: summarise(r["final"]["test_acc"] for r in runs_of(runs, a))["mean"]
               for a in ACTIVATIONS}
        slower = {a: paired_effect(loss_by_seed("sigmoid"), loss_by_seed(a)) for a in others}
        # sigmoid converges slower than each other activation on a majority of seeds
        slowest = all(slower[a]["frac_positive"] > 0.5 for a in others)
        holds = bool(vanishes and slowest)
        ratio_txt = ", ".join(f"{a} {ratio[a]:.2g}" for a in ACTIVATIONS)
        loss_txt = ", ".join(f"{a} {area[a]:.3f}" for a in ACTIVATIONS)
        acc_txt = ", ".join(f"{a} {acc[a]:.1%}" for a in ACTIVATIONS)
        slow_txt = ("slower than every other activation on a majority of seeds" if slowest
                    else "NOT slower than every other activation")
        detail = (
            f"{s['depth']} hidden layers of {s['width']}: at initialisation the first layer's "
            f"weight gradient is this fraction of the last layer's (geometric mean over seeds): "
            f"{ratio_txt} -- sigmoid's gradients "
            f"{'vanish' if vanishes else 'do NOT vanish more than the others'} (needs < "
            f"{s['vanishing_ratio_below']:g} and the smallest). Mean training loss over "
            f"{s['steps']} SGD steps (lower = faster): {loss_txt}; sigmoid is "
            f"{slow_txt}. "
            f"Final test accuracy: {acc_txt}.")
        notes = [
            "Every activation gets the same optimiser, lr, steps and data and the "
            "initialisation its gain calls for, so that only the nonlinearity differs; with "
            "gain 1 the sigmoid layers' mean output is 0.5, not 0, which adds to its trouble "
            "(Glorot & Bengio 2010, sec. 3).",
            "The gradient norms are of each Linear layer's weight, at initialisation, for one "
            "batch of cross-entropy loss.",
        ]
        if s["budget"] == "smoke":
            notes.append("smoke budget: 30 steps on a narrow 5-layer network -- a wiring "
                         "check, the verdict means little.")
        effect = {"grad_ratio_first_last": ratio, "mean_train_loss": area,
                  "final_train_loss": final, "final_test_acc": acc}
        return {"holds": holds, "effect": effect, "detail": detail}, notes

    def _figures(self, runs, s) -> dict:
        figs = {}
        fig, axes = new_figure(ncols=2, width=5.5)
        for j, act in enumerate(ACTIVATIONS):
            rs = runs_of(runs, f"init-grads {act}")
            g = np.array([r["curves"]["grad_norm"] for r in rs], dtype=float)
            mean = np.exp(np.mean(np.log(np.maximum(g, 1e-38)), axis=0))
            axes[0].plot(range(1, len(mean) + 1), mean, marker="o", color=f"C{j}", label=act)
            a = np.array([r["curves"]["act_std"] for r in rs], dtype=float)
            axes[1].plot(range(1, a.shape[1] + 1), a.mean(axis=0), marker="o", color=f"C{j}",
                         label=act)
        axes[0].set_yscale("log")
        axes[0].set_title("weight-gradient norm per layer at initialisation")
        axes[0].set_xlabel("Linear layer (input side first)")
        axes[1].set_yscale("log")
        axes[1].set_title("activation std per hidden layer at initialisation")
        axes[1].set_xlabel("hidden layer")
        for ax in axes:
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
        figs["gradient_norms.png"] = fig
        fig, axes = new_figure(ncols=2, width=5.5)
        curves = group_curves(runs, list(ACTIVATIONS))
        line_plot(curves, "step", "train_loss", f"{s['depth']}-layer MLP: training loss",
                  ax=axes[0], logy=True)
        line_plot(curves, "step", "test_acc", f"{s['depth']}-layer MLP: test accuracy",
                  ax=axes[1], ylim=(0, 1))
        figs["convergence.png"] = fig
        return figs
