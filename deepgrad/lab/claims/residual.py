"""Claim: residual connections cure the degradation of deep plain networks.

He et al. (2016) observed that a deeper *plain* network (layers simply stacked, even with
batch normalisation) reaches a *higher training* error than a shallower one -- not
over-fitting but an optimisation difficulty -- and that the same depth with identity
shortcuts, y = relu(x + F(x)), trains as well as or better than the shallow one. Here at CPU
scale: MLP stacks of width 64 on MNIST, with 4, 16 and 32 hidden layers (Linear, BatchNorm,
ReLU), plain or grouped into two-layer residual blocks with the same layers and parameters.
"""

from __future__ import annotations

import math

import numpy as np

import deepgrad as dg
from deepgrad import nn, optim
from deepgrad.lab.core import Claim, ClaimOutcome, LabContext
from deepgrad.lab.plots import group_curves, line_plot, new_figure
from deepgrad.lab.stats import fmt, paired_effect, summarise
from deepgrad.lab.train import train_classifier
from deepgrad.nn import init


class ResidualBlock(nn.Module):
    """relu(x + BN(W2 relu(BN(W1 x)))): He et al.'s basic block with Linear layers."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(),
                                  nn.Linear(width, width), nn.BatchNorm1d(width))
        # NOTE: the block starts as the identity (last BN scale 0), torchvision's
        # ``zero_init_residual`` (Goyal et al. 2017): a deep stack then starts shallow.
        init.zeros_(self.body[4].weight)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(x + self.body(x))


def build_stack(depth: int, width: int, residual: bool) -> nn.Sequential:
    """Flatten, Linear(784, width)+BN+ReLU stem, ``depth`` hidden Linear+BN(+ReLU) layers
    (plain, or paired into ``depth // 2`` residual blocks), Linear(width, 10)."""
    layers: list[nn.Module] = [nn.Flatten(), nn.Linear(784, width), nn.BatchNorm1d(width),
                               nn.ReLU()]
    if residual:
        layers += [ResidualBlock(width) for _ in range(depth // 2)]
    else:
        for _ in range(depth):
            layers += [nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU()]
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


def _label(depth: int, residual: bool) -> str:
    return f"{'residual' if residual else 'plain'}-{depth}"


def _tail_loss(curves: dict, k: int = 3) -> float:
    tail = [v for v in curves["train_loss"][-k:] if math.isfinite(v)]
    return float(np.mean(tail)) if tail else math.inf


class ResidualClaim(Claim):
    name = "residual"
    title = "Residual connections cure the degradation of deep plain networks"
    statement = ("Stacking more layers onto a plain network (even with batch normalisation) "
                 "eventually makes its *training* loss worse, not better: the degradation "
                 "problem, an optimisation difficulty rather than over-fitting. With identity "
                 "shortcuts (residual blocks) the deep network trains at least as well as the "
                 "shallow one, and much better than the plain network of the same depth.")
    references = [
        "He, Zhang, Ren, Sun 2016, \"Deep Residual Learning for Image Recognition\", CVPR",
        "He, Zhang, Ren, Sun 2016, \"Identity Mappings in Deep Residual Networks\", ECCV",
        "Srivastava, Greff, Schmidhuber 2015, \"Training Very Deep Networks\" (highway "
        "networks), NIPS",
    ]

    def run(self, ctx: LabContext) -> ClaimOutcome:
        s = {
            "budget": ctx.budget, "seeds": list(ctx.seeds),
            "depths": ctx.pick([2, 8], [4, 16, 32], [4, 16, 32, 64]), "width": 64,
            "n_train": ctx.pick(500, 5000, 20000), "n_test": ctx.pick(300, 1000, 10000),
            "steps": ctx.pick(20, 600, 3000), "batch_size": 64,
            "eval_every": ctx.pick(10, 30, 100), "optimizer": "SGD(momentum=0.9)", "lr": 0.05,
        }
        data = ctx.mnist(s["n_train"], s["n_test"])
        runs = []
        for seed in ctx.seeds:
            for residual in (False, True):
                for depth in s["depths"]:
                    dg.manual_seed(seed)
                    model = build_stack(depth, s["width"], residual)
                    opt = optim.SGD(model.parameters(), lr=s["lr"], momentum=0.9)
                    label = _label(depth, residual)
                    curves = train_classifier(model, opt, data, steps=s["steps"],
                                              batch_size=s["batch_size"],
                                              eval_every=s["eval_every"], seed=seed, ctx=ctx,
                                              label=label)
                    runs.append({"variant": label, "seed": seed, "curves": curves, "final": {
                        "depth": depth, "residual": residual, "train_loss": _tail_loss(curves),
                        "test_acc": curves["test_acc"][-1],
                        "diverged": bool(curves["diverged"]),
                        "time_s": curves["time"][-1]}})
        return ClaimOutcome(settings=s, runs=runs, verdict=self.judge(runs, s),
                            figures=self.plot(runs, s), notes=[
            "'train_loss' is the training loss in train mode (mini-batch statistics), averaged "
            "over the last three curve entries -- the quantity He et al. plot; depth counts "
            "the hidden layers between the stem and the classifier.",
            "Each residual block starts as the identity (its last BatchNorm scale is 0, "
            "torchvision's zero_init_residual; Goyal et al. 2017).",
            "A CPU-scale analogue of the paper's CIFAR-10 experiment: MLP stacks on MNIST for a "
            "fixed number of steps, not ConvNets trained to convergence.",
        ])

    @staticmethod
    def judge(runs: list[dict], s: dict) -> dict:
        """Holds when (a) the deepest plain network ends at a higher training loss than the
        shallowest plain one (degradation), and (b) the deepest residual network ends below
        the deepest plain one -- both paired by seed, in the mean and more than half the
        seeds -- and (c) the deepest residual network is not degraded as much as the plain one
        (its loss relative to the shallow residual's is lower than plain's relative to plain's).
        """
        lo, hi = min(s["depths"]), max(s["depths"])

        def by_seed(depth, residual):
            return {r["seed"]: r["final"]["train_loss"] for r in runs
                    if r["final"]["depth"] == depth and r["final"]["residual"] == residual}

        def ok(e):
            return math.isfinite(e["mean_diff"]) and e["mean_diff"] > 0 and e["frac_positive"] > 0.5

        degradation = paired_effect(by_seed(hi, False), by_seed(lo, False))
        cure = paired_effect(by_seed(hi, False), by_seed(hi, True))
        mean = {(d, res): summarise(by_seed(d, res).values())["mean"]
                for d in s["depths"] for res in (False, True)}
        plain_ratio = mean[(hi, False)] / mean[(lo, False)]
        res_ratio = mean[(hi, True)] / mean[(lo, True)]
        parts = {f"plain-{hi} trains worse than plain-{lo} (degradation)": ok(degradation),
                 f"residual-{hi} trains better than plain-{hi}": ok(cure),
                 "residual depth degrades less than plain depth": bool(res_ratio < plain_ratio)}
        table = "; ".join(
            f"depth {d}: plain {fmt(mean[(d, False)])}, residual {fmt(mean[(d, True)])}"
            for d in s["depths"])
        n = degradation["n"]
        detail = (f"Final training loss (mean over {n} seeds) -- {table}. Plain-{hi} vs "
                  f"plain-{lo}: x{fmt(plain_ratio)} (higher in "
                  f"{round(degradation['frac_positive'] * n)}/{n} seeds); residual-{hi} vs "
                  f"residual-{lo}: x{fmt(res_ratio)}; residual-{hi} vs plain-{hi}: "
                  f"{fmt(-cure['mean_diff'])} ± {fmt(cure['std_diff'], 2)} (lower in "
                  f"{round(cure['frac_positive'] * n)}/{n} seeds).")
        if math.isfinite(res_ratio) and res_ratio > 1:
            detail += (f" The deepest residual network still ends slightly above the shallow "
                       f"one (x{fmt(res_ratio)}); in the paper the deeper ResNets reach a lower "
                       "training error, after far more steps than this budget.")
        missing = [k for k, v in parts.items() if not v]
        if missing:
            detail += " Not seen here: " + "; ".join(missing) + "."
            if not parts[f"plain-{hi} trains worse than plain-{lo} (degradation)"]:
                detail += (" With batch normalisation and few steps the plain stack may not "
                           "degrade yet at this depth.")
        return {"holds": all(parts.values()), "detail": detail, "effect": {
            "plain_deep_over_shallow_loss_ratio": plain_ratio,
            "residual_deep_over_shallow_loss_ratio": res_ratio,
            "degradation_loss_increase": degradation["mean_diff"],
            "degradation_loss_increase_std": degradation["std_diff"],
            "residual_vs_plain_deep_loss_drop": cure["mean_diff"],
            "residual_vs_plain_deep_loss_drop_std": cure["std_diff"],
            **{f"part: {k}": v for k, v in parts.items()}}}

    @staticmethod
    def plot(runs: list[dict], s: dict) -> dict:
        fig, axes = new_figure(ncols=2)
        for ax, residual in zip(axes, (False, True)):
            variants = [_label(d, residual) for d in s["depths"]]
            line_plot(group_curves(runs, variants), "step", "train_loss",
                      f"{'residual' if residual else 'plain'} networks: training loss", ax=ax,
                      logy=True)
        lows = [r["final"]["train_loss"] for r in runs if math.isfinite(r["final"]["train_loss"])]
        if lows:
            for ax in axes:
                ax.set_ylim(min(lows) * 0.5, None)
        fig2, (ax,) = new_figure()
        for i, residual in enumerate((False, True)):
            means, lo, hi = [], [], []
            for d in s["depths"]:
                vals = [r["final"]["train_loss"] for r in runs if r["final"]["depth"] == d
                        and r["final"]["residual"] == residual]
                means.append(float(np.mean(vals)))
                lo.append(min(vals))
                hi.append(max(vals))
            ax.plot(s["depths"], means, "o-", color=f"C{i}",
                    label="residual" if residual else "plain")
            ax.fill_between(s["depths"], lo, hi, color=f"C{i}", alpha=0.2, lw=0)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("hidden layers")
        ax.set_ylabel("final training loss")
        ax.set_title("training loss against depth (min..max over seeds)")
        ax.legend()
        ax.grid(True, alpha=0.3)
        return {"curves.png": fig, "depth.png": fig2}
