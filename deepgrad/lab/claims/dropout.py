"""Claim: dropout curbs over-fitting on a small training set.

A wide two-hidden-layer MLP trained long on 1000 MNIST digits fits them perfectly and stops
improving on the test set; the same network with dropout (0.2 on the input, 0.5 on the hidden
units; Hinton et al. 2012) keeps a smaller train/test gap and reaches a higher test accuracy.
Same data, initialisation seed, optimizer, learning rate and number of steps for both.
"""

from __future__ import annotations

import deepgrad as dg
from deepgrad import nn, optim
from deepgrad.lab.core import Claim, ClaimOutcome, LabContext
from deepgrad.lab.plots import bar_plot, group_curves, line_plot, new_figure
from deepgrad.lab.stats import final_by_seed, fmt, paired_effect, summarise
from deepgrad.lab.train import train_classifier

VARIANTS = ("no dropout", "dropout")


def build_mlp(hidden: int, p_in: float, p_hidden: float) -> nn.Sequential:
    """784 -> hidden -> hidden -> 10 ReLU MLP, with Dropout layers where p > 0."""
    layers: list[nn.Module] = [nn.Flatten()]
    if p_in > 0:
        layers.append(nn.Dropout(p_in))
    width = 784
    for _ in range(2):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        if p_hidden > 0:
            layers.append(nn.Dropout(p_hidden))
        width = hidden
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


def _final(curves: dict) -> dict:
    train_acc, test_acc = curves["train_acc"][-1], curves["test_acc"][-1]
    return {"train_acc": train_acc, "test_acc": test_acc, "gap": train_acc - test_acc,
            "test_loss": curves["test_loss"][-1], "best_test_acc": max(curves["test_acc"]),
            "train_time_s": curves["time"][-1]}


class DropoutClaim(Claim):
    name = "dropout"
    title = "Dropout narrows the train/test gap and raises test accuracy on small data"
    statement = ("On a small training set a large network over-fits: it reaches 100% training "
                 "accuracy while its test accuracy stalls. Randomly dropping units during "
                 "training (p=0.5 on hidden units, 0.2 on inputs) prevents co-adaptation, "
                 "narrows the gap between training and test accuracy and improves test "
                 "accuracy.")
    references = [
        "Hinton, Srivastava, Krizhevsky, Sutskever, Salakhutdinov 2012, \"Improving neural "
        "networks by preventing co-adaptation of feature detectors\", arXiv:1207.0580",
        "Srivastava et al. 2014, \"Dropout: A Simple Way to Prevent Neural Networks from "
        "Overfitting\", JMLR 15",
    ]

    def run(self, ctx: LabContext) -> ClaimOutcome:
        s = {
            "budget": ctx.budget, "seeds": list(ctx.seeds),
            "n_train": ctx.pick(200, 1000, 1000), "n_test": ctx.pick(300, 2000, 10000),
            "hidden": ctx.pick(64, 512, 1024), "epochs": ctx.pick(3, 40, 100),
            "batch_size": 50, "optimizer": "SGD(momentum=0.9)", "lr": 0.02,
            "p_input": 0.2, "p_hidden": 0.5, "evals": ctx.pick(3, 10, 20),
        }
        data = ctx.mnist(s["n_train"], s["n_test"])
        steps_per_epoch = s["n_train"] // s["batch_size"]
        eval_every = max(steps_per_epoch * s["epochs"] // s["evals"], 1)
        runs = []
        for seed in ctx.seeds:
            for variant in VARIANTS:
                dg.manual_seed(seed)
                on = variant == "dropout"
                model = build_mlp(s["hidden"], s["p_input"] if on else 0.0,
                                  s["p_hidden"] if on else 0.0)
                opt = optim.SGD(model.parameters(), lr=s["lr"], momentum=0.9)
                curves = train_classifier(model, opt, data, epochs=s["epochs"],
                                          batch_size=s["batch_size"], eval_every=eval_every,
                                          seed=seed, ctx=ctx, eval_train=True, label=variant)
                runs.append({"variant": variant, "seed": seed, "curves": curves,
                             "final": _final(curves)})
        return ClaimOutcome(settings=s, runs=runs, verdict=self.judge(runs),
                            figures=self.plot(runs), notes=[
            "Training accuracy is measured on the whole training set in eval mode (dropout "
            "off), so the gap compares like with like.",
            "Final values are at the end of training, not the best epoch: no test-set "
            "selection.",
        ])

    @staticmethod
    def judge(runs: list[dict]) -> dict:
        """Holds when dropout raises the final test accuracy and narrows the gap, in the
        mean over seeds and in more than half of them."""
        acc = paired_effect(final_by_seed(runs, "dropout", "test_acc"),
                            final_by_seed(runs, "no dropout", "test_acc"))
        gap = paired_effect(final_by_seed(runs, "no dropout", "gap"),
                            final_by_seed(runs, "dropout", "gap"))
        base = summarise(final_by_seed(runs, "no dropout", "test_acc").values())
        drop = summarise(final_by_seed(runs, "dropout", "test_acc").values())
        base_gap = summarise(final_by_seed(runs, "no dropout", "gap").values())
        drop_gap = summarise(final_by_seed(runs, "dropout", "gap").values())
        better = acc["mean_diff"] > 0 and acc["frac_positive"] > 0.5
        narrower = gap["mean_diff"] > 0 and gap["frac_positive"] > 0.5
        holds = bool(better and narrower)
        n = acc["n"]
        detail = (f"Test accuracy {fmt(base['mean'])} ± {fmt(base['std'], 2)} without dropout vs "
                  f"{fmt(drop['mean'])} ± {fmt(drop['std'], 2)} with it: "
                  f"{acc['mean_diff'] * 100:+.2f} ± {acc['std_diff'] * 100:.2f} points, higher in "
                  f"{round(acc['frac_positive'] * n)}/{n} seeds. Train-test gap "
                  f"{fmt(base_gap['mean'])} vs {fmt(drop_gap['mean'])} (narrower in "
                  f"{round(gap['frac_positive'] * n)}/{n} seeds).")
        if not holds:
            why = []
            if not better:
                why.append("dropout did not raise test accuracy")
            if not narrower:
                why.append("the gap did not narrow")
            detail += " Not confirmed here: " + " and ".join(why) + "."
            base_train = summarise(final_by_seed(runs, "no dropout", "train_acc").values())
            if base_train["mean"] < 0.99:
                detail += (f" The baseline reached only {fmt(base_train['mean'])} training "
                           "accuracy: it has not over-fitted yet, so there is nothing for "
                           "dropout to cure and it only slows training down.")
        return {"holds": holds,
                "effect": {"test_acc_gain": acc["mean_diff"], "test_acc_gain_std": acc["std_diff"],
                           "gap_reduction": gap["mean_diff"], "gap_reduction_std": gap["std_diff"],
                           "seeds": n, "frac_seeds_better": acc["frac_positive"]},
                "detail": detail}

    @staticmethod
    def plot(runs: list[dict]) -> dict:
        by = group_curves(runs, VARIANTS)
        fig, axes = new_figure(ncols=2)
        line_plot(by, "epoch", "train_acc", "training accuracy (eval mode)", ax=axes[0])
        line_plot(by, "epoch", "test_acc", "test accuracy", ax=axes[1])
        loss = line_plot(by, "epoch", "test_loss", "test loss (cross-entropy)")
        gaps = bar_plot({v: list(final_by_seed(runs, v, "gap").values()) for v in VARIANTS},
                        "final train - test accuracy gap", "gap")
        return {"accuracy.png": fig, "test_loss.png": loss, "gap.png": gaps}
