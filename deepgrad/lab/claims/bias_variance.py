"""Claim: under- and over-fitting can be read off the training curves.

Three regimes, each diagnosed from its per-epoch curves by
:func:`deepgrad.diagnostics.diagnose_curves` (training error against an acceptable error for
bias, held-out minus training error and a rising held-out loss for variance):

* too small: multinomial logistic regression on plenty of data -- a linear model cannot fit
  MNIST's training set, so its training error stays high (high bias, under-fitting);
* well sized: an MLP with 100 hidden units on the same data for the same few epochs -- low
  training error and a small gap (fine);
* too big for its data: a 512-512 MLP trained long on 1000 images -- 100% training accuracy,
  a large gap and a held-out loss that turns up (high variance, over-fitting).
"""

from __future__ import annotations

import deepgrad as dg
from deepgrad import nn, optim
from deepgrad.diagnostics import diagnose_curves
from deepgrad.lab.claims.dropout import build_mlp
from deepgrad.lab.core import Claim, ClaimOutcome, LabContext
from deepgrad.lab.plots import line_plot, new_figure
from deepgrad.lab.stats import fmt, summarise
from deepgrad.lab.train import train_classifier

REGIMES = ("too small", "well sized", "too big")
EXPECTED = {"too small": "under-fitting", "well sized": "fine", "too big": "over-fitting"}


def history(curves: dict) -> list[dict]:
    """The curves as ``diagnose_curves`` wants them: one dict per evaluation."""
    keys = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc")
    return [{k: curves[k][i] for k in keys} for i in range(len(curves["step"]))]


def build(regime: str, hidden: int, big: int):
    if regime == "too small":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    if regime == "well sized":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(),
                             nn.Linear(hidden, 10))
    return build_mlp(big, 0.0, 0.0)


class BiasVarianceClaim(Claim):
    name = "bias-variance"
    title = "Under- and over-fitting read off the curves: too small, well sized, too big"
    statement = ("The training and held-out curves tell the regime apart: a model too small "
                 "for the task keeps a high training error (high bias: under-fitting; use a "
                 "bigger model, train longer, less regularisation); a model too big for its "
                 "data reaches a near-zero training error with a large held-out gap and a "
                 "held-out loss that rises (high variance: over-fitting; more data, "
                 "augmentation, weight decay, dropout, early stopping, a smaller model); a "
                 "well-sized one has both errors low and close.")
    references = [
        "Goodfellow, Bengio & Courville 2016, \"Deep Learning\", Ch. 5.2 (capacity, over- and "
        "under-fitting) and 7.8 (early stopping)",
        "Ng 2018, \"Machine Learning Yearning\", Ch. 20-32 (bias and variance)",
        "Geman, Bienenstock, Doursat 1992, \"Neural Networks and the Bias/Variance Dilemma\", "
        "Neural Computation",
    ]

    def run(self, ctx: LabContext) -> ClaimOutcome:
        s = {
            "budget": ctx.budget, "seeds": list(ctx.seeds),
            "n_train": ctx.pick(2000, 30000, 60000),
            "n_train_too_big": ctx.pick(300, 1000, 1000), "n_test": ctx.pick(500, 2000, 10000),
            "epochs": ctx.pick(2, 3, 5), "epochs_too_big": ctx.pick(6, 40, 100),
            "hidden": 100, "big_hidden": ctx.pick(128, 512, 1024), "batch_size": 50,
            "optimizer": "SGD(momentum=0.9)", "lr": 0.05,
            "models": {"too small": "logistic regression (Linear 784->10)",
                       "well sized": "MLP 784-100-10",
                       "too big": "MLP 784-H-H-10 (H = big_hidden) on n_train_too_big images"},
            "acceptable_error": 0.05,
        }
        data = ctx.mnist(s["n_train"], s["n_test"])
        small_data = ctx.mnist(s["n_train_too_big"], s["n_test"])
        runs = []
        for seed in ctx.seeds:
            for regime in REGIMES:
                big = regime == "too big"
                d = small_data if big else data
                epochs = s["epochs_too_big"] if big else s["epochs"]
                spe = len(d.x_train) // s["batch_size"]
                dg.manual_seed(seed)
                model = build(regime, s["hidden"], s["big_hidden"])
                opt = optim.SGD(model.parameters(), lr=s["lr"], momentum=0.9)
                # One evaluation per epoch (diagnose_curves counts entries as epochs), on the
                # whole training set in eval mode, so train and held-out errors compare.
                curves = train_classifier(model, opt, d, epochs=epochs,
                                          batch_size=s["batch_size"], eval_every=spe,
                                          seed=seed, ctx=ctx, eval_train=True, label=regime)
                diag = diagnose_curves(history(curves), acceptable_error=s["acceptable_error"])
                ev = diag.evidence
                runs.append({"variant": regime, "seed": seed, "curves": curves,
                             "diagnosis": diag.to_dict(), "final": {
                    "verdict": diag.verdict, "expected": diag.verdict == EXPECTED[regime],
                    "train_error": ev.get("train_error"), "test_error": ev.get("test_error"),
                    "error_gap": ev.get("error_gap"), "test_loss": curves["test_loss"][-1],
                    "test_loss_rising": bool(ev.get("test_loss_rising", False))}})
        remedies = {}
        for regime in REGIMES:
            first = next(r for r in runs if r["variant"] == regime)
            remedies[regime] = first["diagnosis"]
        notes = [
            f"{regime}: diagnosed {rem['verdict']}"
            + ("" if rem["converged"] is not False else " (not converged)")
            + (f"; the notes' remedies: {'; '.join(rem['remedies'])}" if rem["remedies"]
               else "; nothing to fix")
            + f" (seed {s['seeds'][0]})"
            for regime, rem in remedies.items()]
        notes.append("The over-fitting regime uses a small training subset: over-fitting is "
                     "capacity relative to data. Thresholds are those of diagnose_curves "
                     f"(acceptable training error {s['acceptable_error']:.0%}, gap 2 points, "
                     "held-out loss 5% above its minimum).")
        return ClaimOutcome(settings=s, runs=runs, verdict=self.judge(runs),
                            figures=self.plot(runs), notes=notes)

    @staticmethod
    def judge(runs: list[dict]) -> dict:
        """Holds when each regime is diagnosed as expected (under-fitting, fine, over-fitting)
        in more than half of the seeds."""
        effect: dict = {}
        ok, lines = [], []
        for regime in REGIMES:
            rs = [r for r in runs if r["variant"] == regime]
            hits = sum(r["final"]["expected"] for r in rs)
            verdicts = sorted({r["final"]["verdict"] for r in rs})
            tr = summarise(r["final"]["train_error"] for r in rs
                           if r["final"]["train_error"] is not None)
            gap = summarise(r["final"]["error_gap"] for r in rs
                            if r["final"]["error_gap"] is not None)
            ok.append(hits > len(rs) / 2)
            effect[f"{regime}: diagnosed {EXPECTED[regime]}"] = f"{hits}/{len(rs)}"
            effect[f"{regime}: train_error"] = tr["mean"]
            effect[f"{regime}: error_gap"] = gap["mean"]
            lines.append(f"{regime}: {EXPECTED[regime]} in {hits}/{len(rs)} seeds (verdicts "
                         f"{', '.join(verdicts)}; training error {fmt(tr['mean'])}, test-train "
                         f"gap {fmt(gap['mean'])})")
        detail = "; ".join(lines) + "."
        if not all(ok):
            wrong = [r for r, good in zip(REGIMES, ok) if not good]
            detail += (" Not read as expected for " + ", ".join(wrong) + ": the regime sits "
                       "near a threshold of diagnose_curves at this budget (e.g. a gap just "
                       "above 2 points, or a training error just under 5%).")
        return {"holds": all(ok), "effect": effect, "detail": detail}

    @staticmethod
    def plot(runs: list[dict]) -> dict:
        fig, axes = new_figure(ncols=3, nrows=2, width=4.5, height=3.5)
        for col, regime in enumerate(REGIMES):
            curves = [r["curves"] for r in sorted(runs, key=lambda r: r["seed"])
                      if r["variant"] == regime]
            for row, (tr, te, what) in enumerate((("train_acc", "test_acc", "accuracy"),
                                                  ("train_loss", "test_loss", "loss"))):
                ax = axes[row * 3 + col]
                line_plot({"train": curves}, "epoch", tr, "", ax=ax, colors={"train": "C0"})
                line_plot({"test": curves}, "epoch", te, f"{regime} ({EXPECTED[regime]}?)",
                          ax=ax, colors={"test": "C1"}, ylabel=what, logy=(what == "loss"))
        return {"curves.png": fig}
