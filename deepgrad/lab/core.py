"""The lab's types: a claim, the context it runs in, and the outcome it returns.

A claim is one piece of deep-learning lore ("BatchNorm speeds convergence") made into an
experiment: :meth:`Claim.run` trains the variants over several seeds and returns a
:class:`ClaimOutcome` whose verdict is *computed* from those runs, never written in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The budgets, cheapest first: seconds (CI), minutes on two cores, the literature's setting.
BUDGETS = ("smoke", "quick", "full")


@dataclass
class LabContext:
    """Where and how generously a claim runs.

    Attributes:
        budget: ``"smoke"``, ``"quick"`` or ``"full"``.
        seeds: the seeds every variant is run with, e.g. ``[0, 1, 2]``.
        data_dir: folder holding the MNIST IDX files (``None``: the library's default root).
        out_dir: this claim's output folder (created if missing).
        progress: called with one-line status updates.
    """

    budget: str
    seeds: list[int]
    data_dir: Path | None
    out_dir: Path
    progress: Callable[[str], None] = field(default=lambda msg: None)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        if self.budget not in BUDGETS:
            raise ValueError(f"unknown budget {self.budget!r}; choose one of {', '.join(BUDGETS)}")
        self.seeds = [int(s) for s in self.seeds]
        if not self.seeds:
            raise ValueError("LabContext: need at least one seed")
        self.data_dir = None if self.data_dir is None else Path(self.data_dir)
        self.out_dir = Path(self.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)

    def pick(self, smoke: Any, quick: Any, full: Any) -> Any:
        """Return the value given for the current budget."""
        return {"smoke": smoke, "quick": quick, "full": full}[self.budget]

    def mnist(self, n_train: int, n_test: int):
        """A (cached) fixed subset of real MNIST: float32 (N, 1, 28, 28) in [0, 1], int64 labels.

        The subset is the same for every seed (a fixed permutation), so seeds vary only the
        initialisation, the batch order and dropout.

        Raises:
            FileNotFoundError: the MNIST files are not in ``data_dir`` (the message names it).
        """
        from deepgrad.lab.data import load_mnist_subset

        key = ("mnist", int(n_train), int(n_test))
        if key not in self._cache:
            self._cache[key] = load_mnist_subset(self.data_dir, n_train, n_test, self._cache)
        return self._cache[key]


@dataclass
class ClaimOutcome:
    """What a claim's run produced.

    Attributes:
        settings: everything needed to repeat it (budget, sizes, learning rates, seeds, ...).
        runs: one dict per (variant, seed): ``{"variant", "seed", "curves", "final"}``.
        verdict: ``{"holds": bool, "effect": number or dict, "detail": str}``, computed from
            ``runs``; ``detail`` says why, including when the claim does not hold here.
        figures: file name (e.g. ``"loss.png"``) -> ``matplotlib.figure.Figure``.
        notes: caveats shown in the report.
    """

    settings: dict
    runs: list[dict]
    verdict: dict
    figures: dict
    notes: list[str] = field(default_factory=list)


class Claim:
    """One claim of deep-learning lore; subclass and implement :meth:`run`.

    Attributes:
        name: the CLI name, e.g. ``"batchnorm"``.
        title: one line, shown by ``deepgrad lab list``.
        statement: the lore being tested, in words.
        references: the papers.
    """

    name: str = ""
    title: str = ""
    statement: str = ""
    references: list[str] = []

    def run(self, ctx: LabContext) -> ClaimOutcome:
        """Run the experiment at ``ctx.budget`` over ``ctx.seeds`` and judge the claim."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<Claim {self.name}: {self.title}>"
