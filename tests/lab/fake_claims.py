"""Fake claims for the framework tests: no MNIST, milliseconds, verdicts decided by the runs."""

from __future__ import annotations

import numpy as np

from deepgrad.lab.core import Claim, ClaimOutcome, LabContext
from deepgrad.lab.plots import group_curves, line_plot
from deepgrad.lab.stats import final_by_seed, paired_effect


class CoinClaim(Claim):
    """Variant "a" has mean ``mu_a``, "b" mean 0 (per-seed noise 0.01): holds iff a > b."""

    title = "a beats b"
    statement = "Variant a scores higher than variant b."
    references = ["Nobody 2024, A fake paper"]

    def __init__(self, name: str, mu_a: float):
        self.name = name
        self.mu_a = mu_a

    def run(self, ctx: LabContext) -> ClaimOutcome:
        runs = []
        for variant, mu in (("a", self.mu_a), ("b", 0.0)):
            for seed in ctx.seeds:
                rng = np.random.default_rng(seed)
                steps = [1, 2, 3, 4]
                loss = list(mu + np.cumsum(rng.normal(0, 0.01, 4)))
                runs.append({"variant": variant, "seed": seed,
                             "curves": {"step": steps, "train_loss": loss, "nan": [float("nan")]},
                             "final": {"score": loss[-1], "diverged": False}})
                ctx.progress(f"{variant} seed {seed}")
        eff = paired_effect(final_by_seed(runs, "a", "score"), final_by_seed(runs, "b", "score"))
        holds = eff["mean_diff"] > 0
        fig = line_plot(group_curves(runs), "step", "train_loss", "fake")
        return ClaimOutcome(settings={"mu_a": self.mu_a, "budget": ctx.budget},
                            runs=runs,
                            verdict={"holds": bool(holds), "effect": eff,
                                     "detail": f"a - b = {eff['mean_diff']:.3f}"},
                            figures={"loss.png": fig}, notes=["a fake claim"])


class BrokenClaim(Claim):
    name = "broken"
    title = "raises"
    statement = "Always fails."

    def run(self, ctx):
        raise RuntimeError("boom")


class WrittenInClaim(Claim):
    """A verdict that is not a bool: the runner must refuse it."""

    name = "written_in"
    title = "bad verdict"
    statement = "holds is a string"

    def run(self, ctx):
        return ClaimOutcome(settings={}, runs=[], verdict={"holds": "yes", "effect": 1,
                                                           "detail": "trust me"}, figures={})
