"""Claim: larger batches make each step count more and each epoch cheaper, at a price per sample.

The same MLP, optimizer and learning rate, trained for the same number of *steps* with batch
sizes from 16 to 1024. Three things are read off the runs: the wall time per epoch (large
batches use the vectorised matrix products better), the test loss after the same number of
steps (a larger batch is a less noisy gradient, so each step makes more progress) and the test
loss after the same number of *epochs* (samples seen: small batches take more, noisier steps
per epoch and get further).
"""

from __future__ import annotations

import math

import numpy as np

import deepgrad as dg
from deepgrad import nn, optim
from deepgrad.lab.core import Claim, ClaimOutcome, LabContext
from deepgrad.lab.plots import bar_plot, group_curves, line_plot, new_figure
from deepgrad.lab.stats import fmt, paired_effect, summarise
from deepgrad.lab.train import train_classifier


def _label(bs: int) -> str:
    return f"batch {bs}"


def _interp(curves: dict, x: str, at: float, y: str = "test_loss") -> float:
    """``y`` at ``x == at`` by linear interpolation (nan outside the recorded range)."""
    xs = np.asarray(curves[x], dtype=float)
    ys = np.asarray(curves[y], dtype=float)
    ok = np.isfinite(ys)
    xs, ys = xs[ok], ys[ok]
    if xs.size == 0 or at < xs[0] - 1e-9 or at > xs[-1] + 1e-9:
        return math.nan
    return float(np.interp(at, xs, ys))


def _by_seed(runs: list[dict], variant: str, key: str) -> dict:
    return {r["seed"]: float(r["final"][key]) for r in runs if r["variant"] == variant}


class BatchSizeClaim(Claim):
    name = "batch-size"
    title = "Larger batches: less time per epoch, more progress per step, less per epoch"
    statement = ("At a fixed learning rate, a larger mini-batch gives a less noisy gradient, so "
                 "each step makes more progress, and uses the hardware better, so an epoch takes "
                 "less wall time; but it takes fewer steps per epoch, so per sample seen (per "
                 "epoch) small batches make more progress. The returns of a larger batch "
                 "diminish beyond the 'critical batch size'.")
    references = [
        "Bengio 2012, \"Practical Recommendations for Gradient-Based Training of Deep "
        "Architectures\", arXiv:1206.5533",
        "Goyal et al. 2017, \"Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour\", "
        "arXiv:1706.02677",
        "McCandlish, Kaplan, Amodei 2018, \"An Empirical Model of Large-Batch Training\", "
        "arXiv:1812.06162",
        "Shallue et al. 2019, \"Measuring the Effects of Data Parallelism on Neural Network "
        "Training\", JMLR 20",
    ]

    def run(self, ctx: LabContext) -> ClaimOutcome:
        s = {
            "budget": ctx.budget, "seeds": list(ctx.seeds),
            "batch_sizes": ctx.pick([16, 256], [16, 64, 256, 1024], [8, 32, 128, 512, 2048]),
            "n_train": ctx.pick(2048, 8192, 16384), "n_test": ctx.pick(300, 2000, 10000),
            "steps": ctx.pick(32, 300, 1000), "eval_every": ctx.pick(1, 2, 2),
            "hidden": 128, "optimizer": "SGD(momentum=0.9)", "lr": 0.05,
        }
        data = ctx.mnist(s["n_train"], s["n_test"])
        runs = []
        for seed in ctx.seeds:
            for bs in s["batch_sizes"]:
                dg.manual_seed(seed)
                model = nn.Sequential(nn.Flatten(), nn.Linear(784, s["hidden"]), nn.ReLU(),
                                      nn.Linear(s["hidden"], 10))
                opt = optim.SGD(model.parameters(), lr=s["lr"], momentum=0.9)
                curves = train_classifier(model, opt, data, steps=s["steps"], batch_size=bs,
                                          eval_every=s["eval_every"], seed=seed, ctx=ctx,
                                          label=_label(bs))
                epochs = curves["epoch"][-1]
                runs.append({"variant": _label(bs), "seed": seed, "curves": curves, "final": {
                    "batch_size": bs, "epochs": epochs, "test_loss": curves["test_loss"][-1],
                    "test_acc": curves["test_acc"][-1], "train_time_s": curves["time"][-1],
                    "time_per_epoch_s": curves["time"][-1] / epochs if epochs else math.nan,
                    "time_per_step_ms": 1e3 * curves["time"][-1] / max(curves["step"][-1], 1),
                }})
        # Progress per epoch: every run's test loss at the epoch count the smallest batch
        # reaches (80% of it, so that point lies inside every run's recorded range).
        smallest = min(s["batch_sizes"])
        e_star = 0.8 * min(r["final"]["epochs"] for r in runs
                           if r["final"]["batch_size"] == smallest)
        for r in runs:
            r["final"]["test_loss_at_equal_epochs"] = _interp(r["curves"], "epoch", e_star)
        s["equal_epochs"] = e_star
        return ClaimOutcome(settings=s, runs=runs, verdict=self.judge(runs, s),
                            figures=self.plot(runs, s), notes=[
            "Every batch size runs the same number of steps at the same learning rate (no "
            "linear scaling), so 'progress per step' is compared directly; 'progress per epoch' "
            f"is the test loss after {e_star:.3g} epochs, interpolated between evaluations.",
            "Times are training time only (evaluation excluded) on this machine, which may be "
            "shared: compare them within one run, not across reports.",
        ])

    @staticmethod
    def judge(runs: list[dict], s: dict) -> dict:
        """Holds when, comparing the largest batch with the smallest (paired by seed, in the mean
        and in more than half the seeds): its epochs take less time, its test loss after the
        same number of steps is lower, and after the same number of epochs it is higher."""
        small, large = _label(min(s["batch_sizes"])), _label(max(s["batch_sizes"]))

        def paired(key: str, a: str, b: str) -> dict:
            return paired_effect(_by_seed(runs, a, key), _by_seed(runs, b, key))

        faster = paired("time_per_epoch_s", small, large)     # > 0: large is faster per epoch
        per_step = paired("test_loss", small, large)           # > 0: large lower loss per step
        per_epoch = paired("test_loss_at_equal_epochs", large, small)  # > 0: small better

        def ok(e: dict) -> bool:
            return math.isfinite(e["mean_diff"]) and e["mean_diff"] > 0 and e["frac_positive"] > 0.5

        table = []
        for bs in s["batch_sizes"]:
            v = _label(bs)
            t = summarise(_by_seed(runs, v, "time_per_epoch_s").values())
            ls = summarise(_by_seed(runs, v, "test_loss").values())
            le = summarise(_by_seed(runs, v, "test_loss_at_equal_epochs").values())
            table.append(f"{bs}: {fmt(t['mean'])} s/epoch, loss {fmt(ls['mean'])} after "
                         f"{s['steps']} steps, {fmt(le['mean'])} after {s['equal_epochs']:.3g} "
                         "epochs")
        t_small = summarise(_by_seed(runs, small, "time_per_epoch_s").values())["mean"]
        t_large = summarise(_by_seed(runs, large, "time_per_epoch_s").values())["mean"]
        speedup = t_small / t_large if t_large and math.isfinite(t_large) else math.nan
        parts = {"an epoch takes less time with large batches": ok(faster),
                 "large batches make more progress per step": ok(per_step),
                 "small batches make more progress per epoch": ok(per_epoch)}
        holds = all(parts.values())
        detail = (f"Per batch size (mean over seeds) -- {'; '.join(table)}. Batch "
                  f"{max(s['batch_sizes'])} vs {min(s['batch_sizes'])}: {fmt(speedup)}x less "
                  f"time per epoch; test loss after {s['steps']} steps lower by "
                  f"{fmt(per_step['mean_diff'])} ± {fmt(per_step['std_diff'], 2)}; after "
                  f"{s['equal_epochs']:.3g} epochs higher by {fmt(per_epoch['mean_diff'])} ± "
                  f"{fmt(per_epoch['std_diff'], 2)}.")
        means = {bs: summarise(_by_seed(runs, _label(bs), "test_loss").values())["mean"]
                 for bs in s["batch_sizes"]}
        finite = {bs: m for bs, m in means.items() if math.isfinite(m)}
        critical = None
        if finite:
            best = min(finite.values())
            critical = min(bs for bs, m in finite.items() if m <= 1.05 * best)
            detail += (f" Returns diminish: batch {critical} already ends within 5% of the best "
                       f"loss per step ({fmt(best)}), a rough 'critical batch size' here.")
        missing = [k for k, v in parts.items() if not v]
        if missing:
            detail += " Not seen here: " + "; ".join(missing) + "."
        else:
            detail += " All three parts hold."
        return {"holds": bool(holds), "detail": detail, "effect": {
            "time_per_epoch_speedup_largest_vs_smallest": speedup,
            "critical_batch_size_5pct": critical,
            "test_loss_drop_per_step_largest_vs_smallest": per_step["mean_diff"],
            "test_loss_drop_per_step_std": per_step["std_diff"],
            "test_loss_rise_per_epoch_largest_vs_smallest": per_epoch["mean_diff"],
            "test_loss_rise_per_epoch_std": per_epoch["std_diff"],
            **{f"part: {k}": v for k, v in parts.items()}}}

    @staticmethod
    def plot(runs: list[dict], s: dict) -> dict:
        variants = [_label(bs) for bs in s["batch_sizes"]]
        by = group_curves(runs, variants)
        fig, axes = new_figure(ncols=3, width=5.0)
        line_plot(by, "step", "test_loss", "progress per step", ax=axes[0], logy=True)
        line_plot(by, "epoch", "test_loss", "progress per epoch", ax=axes[1], logy=True,
                  logx=True)
        line_plot(by, "time", "test_loss", "progress per second", ax=axes[2], logy=True)
        axes[1].axvline(s["equal_epochs"], color="k", lw=0.8, ls=":")
        tpe = bar_plot({v: list(_by_seed(runs, v, "time_per_epoch_s").values())
                        for v in variants}, "training time per epoch", "seconds", logy=True)
        return {"progress.png": fig, "time_per_epoch.png": tpe}
