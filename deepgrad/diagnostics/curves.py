"""Bias/variance read-out from training curves: under-fitting, over-fitting or fine.

The recipe of the notes (after Ng, "Machine Learning Yearning", and Goodfellow, Bengio &
Courville 2016, Sec. 5.2 and 11.4): compare the training error with the error you would
accept (avoidable bias), then the held-out error with the training error (variance); fix
bias first. Also say whether training has converged (the training loss still falling means
"train longer" before anything else) and whether the held-out loss has turned up (the
classic early-stopping signal).

Reference: Goodfellow, Bengio & Courville 2016, "Deep Learning", Ch. 5.2 (capacity,
over- and under-fitting) and 7.8 (early stopping).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

#: Default acceptable training error (1 - accuracy). Above it the model under-fits: it cannot
#: even fit the data it sees. 5% is a generic default; pass the error you would accept for
#: your task (human-level or a known baseline: ~0.01 on MNIST).
ACCEPTABLE_ERROR = 0.05

#: Over-fitting when the held-out error exceeds the training error by more than this
#: (2 percentage points): well above the noise of a 10k-sample test set (the binomial std of
#: a 2% error rate on 10k samples is 0.14 points).
OVERFIT_GAP = 0.02

#: Without accuracies, over-fitting when the held-out loss exceeds the training loss by more
#: than this fraction of the training loss (scale-free, so it holds for any loss).
OVERFIT_LOSS_REL = 0.5

#: The held-out loss has turned up when its last value is this fraction above its minimum,
#: reached at least ``RISE_MIN_EPOCHS`` epochs before the end: the network is fitting noise
#: and early stopping would have kept the best epoch.
VAL_RISE = 0.05
RISE_MIN_EPOCHS = 2

#: Not converged when the training loss fell, on average over the last ``WINDOW`` epochs, by
#: more than this fraction per epoch: another few epochs would still buy a few percent.
CONVERGENCE_REL = 0.01
WINDOW = 3

REMEDIES = {
    "under-fitting": [
        "a bigger model (more layers or units)",
        "train longer",
        "lower regularisation (weight decay, dropout)",
        "a better optimizer or learning rate (momentum, Adam, a schedule)",
        "better initialisation or batch normalisation (see `deepgrad diagnose`)",
    ],
    "over-fitting": [
        "more training data",
        "data augmentation",
        "weight decay (L2 regularisation)",
        "dropout",
        "early stopping",
        "a smaller model",
    ],
    "not converged": ["train longer: the training loss is still falling"],
    "diverged": [
        "lower the learning rate",
        "clip the gradients",
        "check the inputs for NaN or inf",
    ],
    "fine": [],
}


@dataclass
class CurveDiagnosis:
    """The verdict of :func:`diagnose_curves`.

    Attributes:
        verdict: ``"under-fitting"``, ``"over-fitting"``, ``"fine"`` or ``"diverged"``
            (a non-finite training loss). Bias is reported before variance, as it is fixed
            first; ``high_bias`` and ``high_variance`` say whether each was found.
        converged: False while the training loss still falls by more than
            :data:`CONVERGENCE_REL` per epoch, None with fewer than two epochs.
        high_bias, high_variance: the two findings separately.
        evidence: the numbers behind the verdict.
        remedies: what the notes suggest for the findings, most relevant first.
    """

    verdict: str
    converged: bool | None
    high_bias: bool
    high_variance: bool
    evidence: dict = field(default_factory=dict)
    remedies: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A few lines of text: verdict, evidence, remedies."""
        head = self.verdict + ("" if self.converged is not False else ", not converged")
        if self.high_bias and self.high_variance:
            head += " (and over-fitting)"
        lines = [head]
        ev = ", ".join(f"{k} {_fmt(v)}" for k, v in self.evidence.items() if v is not None)
        lines.append(f"  evidence: {ev}")
        if self.remedies:
            lines.append("  try: " + "; ".join(self.remedies))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "converged": self.converged,
                "high_bias": self.high_bias, "high_variance": self.high_variance,
                "evidence": {k: (v if not isinstance(v, float) or math.isfinite(v) else None)
                             for k, v in self.evidence.items()},
                "remedies": list(self.remedies)}


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _series(history: list[dict], key: str) -> list[float] | None:
    """The values of ``key`` over epochs, or None when any epoch lacks it."""
    values = [h.get(key) for h in history]
    if any(v is None for v in values):
        return None
    return [float(v) for v in values]


def _errors(acc: list[float] | None, percent: bool) -> list[float] | None:
    if acc is None:
        return None
    return [1.0 - (a / 100.0 if percent else a) for a in acc]


def diagnose_curves(history: list[dict], acceptable_error: float = ACCEPTABLE_ERROR,
                    acceptable_loss: float | None = None) -> CurveDiagnosis:
    """Read bias and variance off per-epoch training curves.

    Rules (thresholds are the module constants):

    * diverged: a non-finite training loss.
    * under-fitting (high bias): final training error (1 - ``train_acc``) above
      ``acceptable_error``; without accuracies, final training loss above
      ``acceptable_loss`` when that is given (otherwise bias is not judged).
    * over-fitting (high variance): final held-out error above the training error by more
      than :data:`OVERFIT_GAP`; without accuracies, held-out loss above the training loss by
      more than :data:`OVERFIT_LOSS_REL` of it; or, either way, the held-out loss has risen by
      :data:`VAL_RISE` over its minimum reached :data:`RISE_MIN_EPOCHS` or more epochs earlier.
    * not converged: the training loss still falls by more than :data:`CONVERGENCE_REL` per
      epoch over the last :data:`WINDOW` epochs.

    Args:
        history: one dict per epoch with ``train_loss``, optionally ``train_acc``, and
            ``val_loss``/``val_acc`` or ``test_loss``/``test_acc`` (validation preferred);
            the output of ``deepgrad.training.fit``. Accuracies are fractions, or percentages
            when any exceeds 1. Keys that are None in any epoch are treated as absent.
        acceptable_error: the training error you would accept (human-level, a baseline).
        acceptable_loss: the training loss you would accept, for loss-only histories.

    Returns:
        A :class:`CurveDiagnosis`.

    Raises:
        ValueError: for an empty history or one without ``train_loss``.
    """
    if not history:
        raise ValueError("diagnose_curves: the history is empty")
    train_loss = _series(history, "train_loss")
    if train_loss is None:
        raise ValueError("diagnose_curves: every epoch needs a 'train_loss'")
    held = next((p for p in ("val", "test") if _series(history, f"{p}_loss") is not None
                 or _series(history, f"{p}_acc") is not None), None)
    held_loss = _series(history, f"{held}_loss") if held else None
    train_acc = _series(history, "train_acc")
    held_acc = _series(history, f"{held}_acc") if held else None
    percent = any(a > 1.0 for a in (train_acc or []) + (held_acc or []))
    train_err, held_err = _errors(train_acc, percent), _errors(held_acc, percent)

    n = len(history)
    ev: dict = {"epochs": n, "train_loss": train_loss[-1]}
    if not all(math.isfinite(v) for v in train_loss):
        bad = next(i for i, v in enumerate(train_loss) if not math.isfinite(v))
        ev["diverged_at_epoch"] = bad + 1
        return CurveDiagnosis("diverged", False, False, False, ev, list(REMEDIES["diverged"]))

    # Convergence: mean relative drop per epoch over the last WINDOW epochs.
    converged = None
    if n >= 2:
        k = min(WINDOW, n - 1)
        start, end = train_loss[-1 - k], train_loss[-1]
        rate = (start - end) / (abs(start) * k) if start != 0 else 0.0
        ev["train_loss_drop_per_epoch"] = rate
        converged = rate <= CONVERGENCE_REL

    # Bias.
    high_bias = False
    if train_err is not None:
        ev["train_error"] = train_err[-1]
        ev["acceptable_error"] = acceptable_error
        high_bias = train_err[-1] > acceptable_error
    elif acceptable_loss is not None:
        ev["acceptable_loss"] = acceptable_loss
        high_bias = train_loss[-1] > acceptable_loss

    # Variance.
    high_variance = False
    if held is not None:
        ev["held_out"] = held
    if train_err is not None and held_err is not None:
        gap = held_err[-1] - train_err[-1]
        ev[f"{held}_error"], ev["error_gap"] = held_err[-1], gap
        high_variance = gap > OVERFIT_GAP
    elif held_loss is not None:
        ev[f"{held}_loss"] = held_loss[-1]
        rel = (held_loss[-1] - train_loss[-1]) / abs(train_loss[-1]) if train_loss[-1] else 0.0
        ev["loss_gap_rel"] = rel
        high_variance = rel > OVERFIT_LOSS_REL
    if held_loss is not None and all(math.isfinite(v) for v in held_loss):
        best = min(range(n), key=lambda i: held_loss[i])
        ev[f"best_{held}_epoch"], ev[f"best_{held}_loss"] = best + 1, held_loss[best]
        ev[f"{held}_loss"] = held_loss[-1]
        rose = (n - 1 - best >= RISE_MIN_EPOCHS
                and held_loss[-1] > held_loss[best] * (1 + VAL_RISE))
        ev[f"{held}_loss_rising"] = rose
        high_variance = high_variance or rose

    verdict = "under-fitting" if high_bias else "over-fitting" if high_variance else "fine"
    remedies: list[str] = []
    if converged is False and not (high_variance and not high_bias):
        remedies += REMEDIES["not converged"]
    if high_bias:
        # NOTE: "train longer" is already first when not converged, and useless when converged.
        remedies += [r for r in REMEDIES["under-fitting"]
                     if r != "train longer" or converged is None]
    if high_variance:
        best_key = f"best_{held}_epoch"
        remedies += [f"early stopping (best held-out loss at epoch {ev[best_key]})"
                     if r == "early stopping" and best_key in ev else r
                     for r in REMEDIES["over-fitting"]]
    return CurveDiagnosis(verdict, converged, high_bias, high_variance, ev, remedies)
