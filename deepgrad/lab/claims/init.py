"""Initialisation: per-layer activation statistics (Glorot & Bengio 2010) and the 30-layer ReLU
network that trains with He initialisation and stalls with Xavier (He et al. 2015).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from deepgrad import nn, optim
from deepgrad.lab.core import Claim, ClaimOutcome, LabContext
from deepgrad.lab.plots import group_curves, line_plot, new_figure
from deepgrad.lab.stats import runs_of, summarise
from deepgrad.lab.train import run_variant
from deepgrad.nn import functional as F
from deepgrad.nn import init as nninit
from deepgrad.tensor import Tensor

#: The schemes compared, in plot order.
SCHEMES = ("zeros", "N(0,1)", "N(0,1/n)", "xavier", "he")
ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}


def init_linear(layer: nn.Linear, scheme: str) -> None:
    """Initialise a Linear layer's weight by ``scheme``; biases to zero.

    zeros: W = 0.  N(0,1): unit Gaussian.  N(0,1/n): std 1/sqrt(fan_in) (LeCun).  xavier:
    Glorot normal, std sqrt(2 / (fan_in + fan_out)), gain 1.  he: Kaiming normal, std
    sqrt(2 / fan_in).
    """
    w = layer.weight
    if scheme == "zeros":
        nninit.zeros_(w)
    elif scheme == "N(0,1)":
        nninit.normal_(w, 0.0, 1.0)
    elif scheme == "N(0,1/n)":
        nninit.normal_(w, 0.0, 1.0 / math.sqrt(w.shape[1]))
    elif scheme == "xavier":
        nninit.xavier_normal_(w)
    elif scheme == "he":
        nninit.kaiming_normal_(w, nonlinearity="relu")
    else:
        raise ValueError(f"unknown init scheme {scheme!r}")
    if layer.bias is not None:
        nninit.zeros_(layer.bias)


def deep_mlp(depth: int, width: int, activation: str, scheme: str) -> nn.Sequential:
    """784 -> depth x (Linear, activation) of ``width`` -> 10, every Linear by ``scheme``."""
    layers: list[nn.Module] = [nn.Flatten()]
    fan_in = 784
    for _ in range(depth):
        layers += [nn.Linear(fan_in, width), ACTIVATIONS[activation]()]
        fan_in = width
    layers.append(nn.Linear(fan_in, 10))
    for m in layers:
        if isinstance(m, nn.Linear):
            init_linear(m, scheme)
    return nn.Sequential(*layers)


def layer_statistics(model: nn.Sequential, x: np.ndarray, y: np.ndarray,
                     keep: int = 20000) -> dict:
    """One forward/backward pass: each hidden activation's values (a sample), mean, std, and
    each Linear's weight-gradient norm.

    Returns:
        ``{"act_std": [...], "act_mean": [...], "samples": [arrays], "grad_norm": [...]}``
        with one entry per hidden layer (``grad_norm`` one per Linear, input side first).
    """
    model.zero_grad()
    h = Tensor(x)
    acts = []
    for layer in model:
        h = layer(h)
        if isinstance(layer, tuple(ACTIVATIONS.values())):
            acts.append(h.data)
    loss = F.cross_entropy(h, Tensor(y))
    loss.backward()
    rng = np.random.default_rng(0)
    samples = []
    for a in acts:
        flat = a.reshape(-1)
        samples.append(flat[rng.choice(flat.size, min(keep, flat.size), replace=False)])
    grads = [float(np.linalg.norm(m.weight.grad.data)) if m.weight.grad is not None else 0.0
             for m in model if isinstance(m, nn.Linear)]
    model.zero_grad()
    return {"act_mean": [float(a.mean()) for a in acts], "act_std": [float(a.std()) for a in acts],
            "samples": samples, "grad_norm": grads}


class InitClaim(Claim):
    name = "init"
    title = "He initialisation trains a 30-layer ReLU network that stalls with Xavier"
    statement = ("Activations and gradients keep their scale through depth only when the "
                 "initialisation matches the nonlinearity (Glorot & Bengio 2010); for ReLU "
                 "that is He's std sqrt(2/n): a 30-layer ReLU network trains with He "
                 "initialisation and stalls with Xavier (He et al. 2015).")
    references = [
        "Glorot & Bengio 2010, Understanding the difficulty of training deep feedforward "
        "neural networks, AISTATS",
        "He, Zhang, Ren & Sun 2015, Delving Deep into Rectifiers: Surpassing Human-Level "
        "Performance on ImageNet Classification, ICCV (sec. 2.2, Fig. 3)",
        "LeCun, Bottou, Orr & Mueller 1998, Efficient BackProp",
    ]

    def run(self, ctx: LabContext) -> ClaimOutcome:
        s = {
            "budget": ctx.budget, "seeds": ctx.seeds,
            "n_train": ctx.pick(1000, 20000, 60000), "n_test": ctx.pick(300, 1000, 10000),
            "hist_depth": ctx.pick(5, 10, 10), "hist_width": ctx.pick(64, 256, 1000),
            "hist_batch": ctx.pick(200, 1000, 1000),
            "deep_depth": ctx.pick(30, 30, 30), "deep_width": ctx.pick(32, 100, 256),
            "deep_optimizer": "SGD momentum 0.9, same lr for both", "deep_lr": 0.005,
            "deep_lr_sweep": ctx.pick([], [0.002, 0.02], [0.001, 0.002, 0.01, 0.02]),
            "deep_steps": ctx.pick(30, 300, 3000), "deep_batch_size": 64,
            "trains_if_test_acc_at_least": 0.5, "stalls_if_test_acc_below": 0.2,
        }
        data = ctx.mnist(s["n_train"], s["n_test"])
        # ---- (1) activation statistics at initialisation, all schemes x activations
        ctx.progress("activation statistics at initialisation")
        xb = data.x_train[:s["hist_batch"]]
        yb = data.y_train[:s["hist_batch"]]
        stats: dict = {}
        runs: list[dict] = []
        for act in ACTIVATIONS:
            for scheme in SCHEMES:
                per_seed = []
                for seed in ctx.seeds:
                    from deepgrad import manual_seed
                    manual_seed(seed)
                    model = deep_mlp(s["hist_depth"], s["hist_width"], act, scheme)
                    with np.errstate(all="ignore"):
                        st = layer_statistics(model, xb, yb)
                    per_seed.append(st)
                    runs.append({"variant": f"stats {act} {scheme}", "seed": seed,
                                 "curves": {"layer": list(range(1, len(st["act_std"]) + 1)),
                                            "act_mean": st["act_mean"],
                                            "act_std": st["act_std"],
                                            "grad_norm": st["grad_norm"]},
                                 "final": {"last_act_std": st["act_std"][-1],
                                           "first_act_std": st["act_std"][0],
                                           "grad_norm_ratio_first_last":
                                               _ratio(st["grad_norm"][0], st["grad_norm"][-1])}})
                stats[(act, scheme)] = per_seed
        # ---- (2) 30-layer ReLU network, He vs Xavier, same lr and step budget
        kw = dict(steps=s["deep_steps"], batch_size=s["deep_batch_size"],
                  eval_every=ctx.pick(10, 25, 100))

        def build(scheme, lr):
            def b(seed):
                m = deep_mlp(s["deep_depth"], s["deep_width"], "relu", scheme)
                return m, optim.SGD(m.parameters(), lr=lr, momentum=0.9)
            return b

        for scheme in ("he", "xavier"):
            runs += run_variant(ctx, f"30-layer {scheme} lr={s['deep_lr']:g}",
                                build(scheme, s["deep_lr"]), data, **kw)
        one_seed = dataclasses.replace(ctx, seeds=ctx.seeds[:1])
        one_seed._cache = ctx._cache
        for lr in s["deep_lr_sweep"]:
            for scheme in ("he", "xavier"):
                runs += run_variant(one_seed, f"30-layer {scheme} lr={lr:g}", build(scheme, lr),
                                    data, **kw)
        verdict, notes = self._verdict(runs, s, stats)
        figures = self._figures(runs, s, stats)
        return ClaimOutcome(settings=s, runs=runs, verdict=verdict, figures=figures,
                            notes=notes)

    def _verdict(self, runs, s, stats) -> tuple[dict, list[str]]:
        lr = s["deep_lr"]
        he = runs_of(runs, f"30-layer he lr={lr:g}")
        xa = runs_of(runs, f"30-layer xavier lr={lr:g}")

        def acc(rs):
            return summarise(r["final"]["test_acc"] if math.isfinite(r["final"]["test_acc"])
                             else 0.0 for r in rs)

        he_acc, xa_acc = acc(he), acc(xa)
        he_loss = summarise(r["final"]["train_loss"] for r in he)
        xa_loss = summarise(r["final"]["train_loss"] for r in xa)
        trains = he_acc["mean"] >= s["trains_if_test_acc_at_least"]
        stalls = xa_acc["mean"] < s["stalls_if_test_acc_below"]
        holds = bool(trains and stalls)
        sweep = []
        for lr2 in s["deep_lr_sweep"]:
            h = acc(runs_of(runs, f"30-layer he lr={lr2:g}"))["mean"]
            x = acc(runs_of(runs, f"30-layer xavier lr={lr2:g}"))["mean"]
            sweep.append(f"lr {lr2:g}: He {h:.1%}, Xavier {x:.1%}")
        shrink_x, shrink_h = (
            float(np.mean([st["act_std"][-1] / max(st["act_std"][0], 1e-30)
                           for st in stats[("relu", scheme)]])) for scheme in ("xavier", "he"))
        detail = (
            f"{s['deep_depth']}-layer ReLU MLP (width {s['deep_width']}), SGD momentum 0.9, lr "
            f"{lr:g}, {s['deep_steps']} steps, {len(he)} seed(s): He ends at "
            f"{he_acc['mean']:.1%} test accuracy (train loss {he_loss['mean']:.3f}) -- "
            f"{'trains' if trains else 'does NOT train'} (needs >= "
            f"{s['trains_if_test_acc_at_least']:.0%}); Xavier ends at {xa_acc['mean']:.1%} "
            f"(train loss {xa_loss['mean']:.3f}, ln 10 = {math.log(10):.3f}) -- "
            f"{'stalls' if stalls else 'does NOT stall'} (stall: < "
            f"{s['stalls_if_test_acc_below']:.0%}). At initialisation the last hidden layer's "
            f"activation std is {shrink_x:.2g} x the first's with Xavier and {shrink_h:.2g} x "
            f"with He ({s['hist_depth']} layers of {s['hist_width']}).")
        if sweep:
            detail += " Other learning rates (seed 0): " + "; ".join(sweep) + "."
        notes = [
            "Xavier (Glorot normal, gain 1) keeps Var(W) = 2/(fan_in + fan_out) = 1/n for square "
            "layers, but a ReLU zeroes half its input's energy, so each layer halves the "
            "second moment: over 30 layers the signal shrinks by about 2^-15 in std, and so do "
            "the gradients of the early layers. He's 2/n compensates exactly.",
            "Same learning rate, step budget, width and data for both schemes; a small lr "
            "sweep (seed 0) checks that Xavier's stall is not an artefact of one lr.",
            "zeros: every unit of a layer computes the same thing (with ReLU and zero biases "
            "every activation is 0), so no gradient breaks the symmetry; N(0,1) saturates "
            "sigmoid/tanh and explodes ReLU activations (std grows ~sqrt(n/2) per layer).",
        ]
        if s["budget"] == "smoke":
            notes.append("smoke budget: 30 steps on a narrow network -- a wiring check only.")
        effect = {"he_test_acc": he_acc["mean"], "xavier_test_acc": xa_acc["mean"],
                  "he_train_loss": he_loss["mean"], "xavier_train_loss": xa_loss["mean"],
                  "relu_xavier_act_std_last_over_first": shrink_x,
                  "relu_he_act_std_last_over_first": shrink_h}
        return {"holds": holds, "effect": effect, "detail": detail}, notes

    def _figures(self, runs, s, stats) -> dict:
        figs = {}
        depth = s["hist_depth"]
        shown = sorted({0, depth // 4, depth // 2, (3 * depth) // 4, depth - 1})
        fig, axes = new_figure(ncols=len(SCHEMES), nrows=len(ACTIVATIONS), width=3.2,
                               height=2.5)
        for i, act in enumerate(ACTIVATIONS):
            for j, scheme in enumerate(SCHEMES):
                ax = axes[i * len(SCHEMES) + j]
                samples = stats[(act, scheme)][0]["samples"]
                _histograms(ax, act, [samples[k] for k in shown], [f"layer {k + 1}"
                                                                   for k in shown])
                ax.set_title(f"{act}, {scheme}", fontsize=9)
                ax.tick_params(labelsize=7)
                ax.set_yticks([])
        axes[0].legend(fontsize=6)
        fig.subplots_adjust(top=0.9)
        fig.suptitle(f"activation histograms at initialisation ({depth} layers of "
                     f"{s['hist_width']}, seed {s['seeds'][0]}); ReLU row: log10 of the "
                     "positive activations (the rest are exactly 0)", fontsize=10)
        figs["activation_histograms.png"] = fig
        for key, title, fname in (
                ("act_std", "activation std per layer (log scale)", "activation_std.png"),
                ("grad_norm", "weight-gradient norm per layer (log scale)", "gradient_norm.png")):
            fig, axes = new_figure(ncols=len(ACTIVATIONS), width=4.6)
            for ax, act in zip(axes, ACTIVATIONS):
                for j, scheme in enumerate(SCHEMES):
                    vals = np.array([st[key] for st in stats[(act, scheme)]], dtype=float)
                    mean = np.exp(np.mean(np.log(np.maximum(vals, 1e-38)), axis=0))
                    ax.plot(range(1, len(mean) + 1), mean, marker=".", color=f"C{j}",
                            label=scheme)
                ax.set_yscale("log")
                ax.set_xlabel("layer (input side first)")
                ax.set_title(f"{act}: {title}", fontsize=9)
                ax.grid(True, alpha=0.3)
            axes[0].legend(fontsize=7)
            figs[fname] = fig
        lr = s["deep_lr"]
        variants = [f"30-layer he lr={lr:g}", f"30-layer xavier lr={lr:g}"]
        fig, axes = new_figure(ncols=2, width=5.5)
        line_plot(group_curves(runs, variants), "step", "train_loss",
                  f"30-layer ReLU MLP, lr {lr:g}: training loss", ax=axes[0])
        line_plot(group_curves(runs, variants), "step", "test_acc",
                  f"30-layer ReLU MLP, lr {lr:g}: test accuracy", ax=axes[1], ylim=(0, 1))
        figs["deep_relu_he_vs_xavier.png"] = fig
        if s["deep_lr_sweep"]:
            sweep_variants = [f"30-layer {sc} lr={x:g}" for x in s["deep_lr_sweep"]
                              for sc in ("he", "xavier")]
            figs["deep_relu_lr_sweep.png"] = line_plot(
                group_curves(runs, sweep_variants), "step", "train_loss",
                "30-layer ReLU MLP, other learning rates (seed 0)")
        return figs


def _histograms(ax, act: str, samples: list, labels: list) -> None:
    """Overlaid step histograms of several layers' activations on one axes.

    sigmoid and tanh on their fixed ranges; ReLU as log10 of the positive values, so that
    shrinking (Xavier), stable (He) and exploding (N(0,1)) layers separate visibly.
    """
    if act == "relu":
        vals = [np.log10(v[np.isfinite(v) & (v > 0)]) for v in samples]
        allv = np.concatenate(vals) if vals else np.array([])
        if allv.size == 0:
            ax.text(0.5, 0.5, "all activations are 0", ha="center", va="center",
                    transform=ax.transAxes, fontsize=8)
            return
        lo, hi = np.percentile(allv, [0.5, 99.5])
        if hi - lo < 1e-6:
            lo, hi = lo - 0.5, hi + 0.5
        ax.set_xlabel("log10 activation", fontsize=7)
    else:
        vals = [v[np.isfinite(v)] for v in samples]
        lo, hi = (0.0, 1.0) if act == "sigmoid" else (-1.0, 1.0)
    for v, label in zip(vals, labels):
        v = v[(v >= lo) & (v <= hi)]
        if v.size:
            ax.hist(v, bins=40, range=(lo, hi), histtype="step", density=True, label=label)


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.inf if a else math.nan
