"""Claim: clipping the gradient norm rescues a network whose gradients explode.

A deep ReLU MLP without normalisation, initialised with weights too large for its depth
(std 2/sqrt(fan_in) instead of He's sqrt(2)/sqrt(fan_in)), so activations and gradients grow
by about sqrt(2) per layer; trained with SGD and momentum, its first gradients have norms in
the hundreds and one step throws the weights into overflow. The same network and optimizer,
with the total gradient norm clipped to 10 or to 1 before each step, trains.
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
from deepgrad.nn.clip_grad import clip_grad_norm_, get_total_norm

NO_CLIP = "no clipping"
#: Per-step gradient norms kept for the plot of the start of training.
FIRST_STEPS = 100


def _label(max_norm: float | None) -> str:
    return NO_CLIP if max_norm is None else f"clip at {max_norm:g}"


class ClipAndRecord:
    """Optimizer wrapper: before each step, record the total gradient norm and (if
    ``max_norm`` is set) clip it with ``clip_grad_norm_``, exactly as ``train_classifier``'s
    ``clip_norm`` does; the recorded norms are the ones *before* clipping."""

    def __init__(self, optimizer, params: list, max_norm: float | None):
        self.optimizer, self.params, self.max_norm = optimizer, params, max_norm
        self.norms: list[float] = []

    @property
    def param_groups(self):
        return self.optimizer.param_groups

    def zero_grad(self) -> None:
        self.optimizer.zero_grad()

    def step(self) -> None:
        if self.max_norm is None:
            norm = get_total_norm([p.grad for p in self.params if p.grad is not None])
        else:
            norm = clip_grad_norm_(self.params, self.max_norm)
        self.norms.append(float(norm.item()))
        self.optimizer.step()


def build_deep_mlp(depth: int, width: int, gain: float) -> nn.Sequential:
    """``depth`` Linear+ReLU layers of ``width`` with weights N(0, (gain/sqrt(fan_in))^2)."""
    layers: list[nn.Module] = [nn.Flatten()]
    fan_in = 784
    for _ in range(depth):
        lin = nn.Linear(fan_in, width)
        init.normal_(lin.weight, 0.0, gain / math.sqrt(fan_in))
        init.zeros_(lin.bias)
        layers += [lin, nn.ReLU()]
        fan_in = width
    layers.append(nn.Linear(fan_in, 10))
    return nn.Sequential(*layers)


def _window_stats(curves: dict, norms: list[float]) -> None:
    """Add ``grad_norm_max`` / ``grad_norm_median`` per curve entry (over the steps since the
    previous entry)."""
    curves["grad_norm_max"], curves["grad_norm_median"] = [], []
    prev = 0
    for step in curves["step"]:
        window = [v for v in norms[prev:int(step)] if math.isfinite(v)]
        curves["grad_norm_max"].append(max(window) if window else math.nan)
        curves["grad_norm_median"].append(float(np.median(window)) if window else math.nan)
        prev = int(step)


class ClippingClaim(Claim):
    name = "clipping"
    title = "Clipping the gradient norm tames exploding gradients"
    statement = ("When gradients explode (a deep network whose layers amplify the signal, a "
                 "large learning rate), a single huge step throws the weights far away and "
                 "training diverges. Rescaling the gradient so its total norm is at most a "
                 "threshold keeps its direction but bounds the step, and the same network then "
                 "trains.")
    references = [
        "Pascanu, Mikolov, Bengio 2013, \"On the difficulty of training recurrent neural "
        "networks\", ICML",
        "Goodfellow, Bengio & Courville 2016, \"Deep Learning\", Sec. 10.11.1 (clipping "
        "gradients)",
        "Zhang, He, Sra, Jadbabaie 2020, \"Why Gradient Clipping Accelerates Training\", ICLR",
    ]

    def run(self, ctx: LabContext) -> ClaimOutcome:
        s = {
            "budget": ctx.budget, "seeds": list(ctx.seeds),
            "n_train": ctx.pick(500, 4000, 20000), "n_test": ctx.pick(300, 1000, 10000),
            "depth": 10, "width": 128, "init_gain": 2.0, "steps": ctx.pick(30, 1000, 3000),
            "eval_every": ctx.pick(10, 40, 100), "batch_size": 64,
            "optimizer": "SGD(momentum=0.9)", "lr": 0.05, "max_norms": [None, 10.0, 1.0],
        }
        data = ctx.mnist(s["n_train"], s["n_test"])
        runs = []
        for seed in ctx.seeds:
            for max_norm in s["max_norms"]:
                dg.manual_seed(seed)
                model = build_deep_mlp(s["depth"], s["width"], s["init_gain"])
                params = list(model.parameters())
                opt = ClipAndRecord(optim.SGD(params, lr=s["lr"], momentum=0.9), params,
                                    max_norm)
                curves = train_classifier(model, opt, data, steps=s["steps"],
                                          batch_size=s["batch_size"], eval_every=s["eval_every"],
                                          seed=seed, ctx=ctx, label=_label(max_norm))
                _window_stats(curves, opt.norms)
                curves["grad_norm_first_steps"] = opt.norms[:FIRST_STEPS]
                finite = [v for v in opt.norms if math.isfinite(v)]
                tail = curves["train_loss"][-3:]
                runs.append({"variant": _label(max_norm), "seed": seed, "curves": curves,
                             "final": {
                    "diverged": bool(curves["diverged"]),
                    "steps_done": int(curves["step"][-1]),
                    "train_loss": float(np.mean(tail)) if tail else math.nan,
                    "test_acc": curves["test_acc"][-1],
                    "first_grad_norm": opt.norms[0] if opt.norms else math.nan,
                    "max_grad_norm": max(finite) if finite else math.nan,
                    "median_grad_norm": float(np.median(finite)) if finite else math.nan}})
        return ClaimOutcome(settings=s, runs=runs, verdict=self.judge(runs, s),
                            figures=self.plot(runs, s), notes=[
            "Gradient norms are recorded before clipping; 'train_loss' in the final table is the "
            "mean of the last three curve entries (each a mean over its mini-batches).",
            "A run diverges when its loss becomes NaN/inf or exceeds 1e4; it then stops, and "
            "its final loss counts as worse than any finite one.",
        ])

    @staticmethod
    def judge(runs: list[dict], s: dict) -> dict:
        """Holds when the unclipped network diverges (or ends at a higher loss) in more than
        half the seeds and every clipped variant trains without diverging in all seeds to a
        lower loss than the unclipped one."""
        ceiling = 1e4  # a diverged run's loss, for the paired comparison

        def loss_by_seed(variant):
            return {r["seed"]: (r["final"]["train_loss"] if not r["final"]["diverged"]
                                and math.isfinite(r["final"]["train_loss"]) else ceiling)
                    for r in runs if r["variant"] == variant}

        def count(variant):
            rs = [r for r in runs if r["variant"] == variant]
            return sum(r["final"]["diverged"] for r in rs), len(rs)

        base = loss_by_seed(NO_CLIP)
        d0, n = count(NO_CLIP)
        first = summarise(r["final"]["first_grad_norm"] for r in runs
                          if r["variant"] == NO_CLIP)
        effect: dict = {"no clipping: diverged": f"{d0}/{n}",
                        "initial_grad_norm": first["mean"]}
        clipped_ok, lines = [], []
        for max_norm in [m for m in s["max_norms"] if m is not None]:
            v = _label(max_norm)
            d, _ = count(v)
            e = paired_effect(base, loss_by_seed(v))
            fin = summarise(r["final"]["train_loss"] for r in runs
                            if r["variant"] == v and not r["final"]["diverged"])
            ok = d == 0 and e["frac_positive"] > 0.5
            clipped_ok.append(ok)
            effect[f"{v}: diverged"] = f"{d}/{n}"
            effect[f"{v}: final_train_loss"] = fin["mean"]
            effect[f"{v}: final_train_loss_std"] = fin["std"]
            lines.append(f"{v}: diverged in {d}/{n} seeds, final training loss "
                         f"{fmt(fin['mean'])} ± {fmt(fin['std'], 2)}")
        unclipped_bad = sum(1 for seed, v in base.items()
                            if v >= ceiling or any(v > lb for lb in
                                                   [loss_by_seed(_label(m)).get(seed, ceiling)
                                                    for m in s["max_norms"] if m is not None]))
        holds = unclipped_bad > n / 2 and all(clipped_ok)
        nofin = summarise(r["final"]["train_loss"] for r in runs
                          if r["variant"] == NO_CLIP and not r["final"]["diverged"])
        detail = (f"Initial gradient norm {fmt(first['mean'])} (mean over seeds). Without "
                  f"clipping the network diverged in {d0}/{n} seeds"
                  + (f" (the others ended at loss {fmt(nofin['mean'])})" if nofin["n"] else "")
                  + "; " + "; ".join(lines) + ".")
        if not holds:
            if d0 == 0:
                detail += (" Not confirmed: the unclipped run did not diverge here, so the "
                           "gradients did not explode enough to need clipping.")
            if not all(clipped_ok):
                detail += (" Not confirmed: a clipped variant diverged or ended no better: a "
                           "threshold that is too high does not bound the steps enough.")
        return {"holds": bool(holds), "effect": effect, "detail": detail}

    @staticmethod
    def plot(runs: list[dict], s: dict) -> dict:
        variants = [_label(m) for m in s["max_norms"]]
        by = group_curves(runs, variants)
        fig, axes = new_figure(ncols=2)
        line_plot(by, "step", "train_loss", "training loss (x: diverged)", ax=axes[0], logy=True)
        for i, v in enumerate(variants):
            for r in runs:
                if r["variant"] == v and r["final"]["diverged"]:
                    finite = [x for x in r["curves"]["train_loss"] if math.isfinite(x)]
                    y = finite[-1] if finite else 2.3  # ~ln(10), the loss at the start
                    axes[0].plot([r["final"]["steps_done"]], [y], "x", color=f"C{i}", ms=10,
                                 mew=2)
        ax = axes[1]
        for i, v in enumerate(variants):
            rows = [r["curves"]["grad_norm_first_steps"] for r in runs if r["variant"] == v]
            width = max((len(x) for x in rows), default=0)
            if not width:
                continue
            arr = np.full((len(rows), width), np.nan)
            for j, x in enumerate(rows):
                arr[j, :len(x)] = x
            with np.errstate(all="ignore"):
                mean = np.nanmean(np.where(np.isfinite(arr), arr, np.nan), axis=0)
            ax.plot(np.arange(1, width + 1), mean, "o-" if width < 10 else "-", color=f"C{i}",
                    label=f"{v} (n={len(rows)})", ms=5)
        for m in s["max_norms"]:
            if m is not None:
                ax.axhline(m, color="k", lw=0.6, ls=":")
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("total gradient norm before clipping")
        ax.set_title(f"gradient norm, first {FIRST_STEPS} steps (mean over seeds)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        late = line_plot(by, "step", "grad_norm_max", "largest gradient norm per evaluation "
                         "window, before clipping", logy=True, ylabel="gradient norm")
        acc = line_plot(by, "step", "test_acc", "test accuracy")
        return {"curves.png": fig, "grad_norm.png": late, "test_acc.png": acc}
