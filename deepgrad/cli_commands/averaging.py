"""Model averaging in ``deepgrad train``: ``--ensemble K``, ``--swa-start EPOCH``, ``--ema DECAY``.

* ``--ensemble K`` trains K members from the seeds ``--seed`` .. ``--seed``+K-1 (each with its
  own initialisation, data order, optimizer and schedule) and evaluates their
  :class:`~deepgrad.training.averaging.Ensemble` (the average of the predicted probabilities);
  ``model.npz`` holds the ensemble's weights (``members.<i>.<name>``).
* ``--swa-start EPOCH`` (with ``--swa-lr LR``, ``--swa-every-steps K``) averages the weights
  equally from that epoch on (:class:`~deepgrad.training.averaging.SWA`); ``--ema DECAY``
  keeps an exponential moving average of the weights after every step
  (:class:`~deepgrad.training.averaging.EMA`). Both recompute the BatchNorm statistics of the
  averaged weights on the training set, are evaluated on the test set and saved as
  ``model_swa.npz`` / ``model_ema.npz``; the run's own ``test_accuracy`` and ``model.npz``
  stay those of the final weights. The two may be combined.

Runs that average save no ``checkpoint.npz`` (the running average is not part of a
checkpoint), so they cannot be resumed; ``--ensemble`` does not combine with SWA or EMA.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from deepgrad import _cli_validation as check
from deepgrad._cli_validation import UsageError
from deepgrad.cli_commands import training_options as options
from deepgrad.data import DataLoader
from deepgrad.training import evaluate
from deepgrad.training.averaging import EMA, SWA, train_ensemble
from deepgrad.training.io import save_weights

#: the dests of the averaging options
DESTS = ("ensemble", "swa_start", "swa_lr", "swa_every_steps", "ema")


def decay(text: str) -> float:
    """An EMA decay in [0, 1) (1 would never move from the first weights)."""
    value = check._number(text, float)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text!r}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add ``--ensemble``, ``--swa-start``, ``--swa-lr``, ``--swa-every-steps``, ``--ema``."""
    p.add_argument("--ensemble", type=check.positive_int, default=None, metavar="K",
                   help="train K models from seeds S..S+K-1 and evaluate the ensemble (the "
                        "average of their probabilities); model.npz holds all K")
    p.add_argument("--swa-start", type=check.positive_int, default=None, metavar="EPOCH",
                   help="stochastic weight averaging: average the weights from this epoch on "
                        "(BatchNorm statistics recomputed); saved as model_swa.npz")
    p.add_argument("--swa-lr", type=check.positive_float, default=None, metavar="LR",
                   help="with --swa-start: hold the lr at LR from the start epoch on "
                        "(default: leave the schedule alone)")
    p.add_argument("--swa-every-steps", type=check.positive_int, default=None, metavar="K",
                   help="with --swa-start: average every K steps (default: once per epoch)")
    p.add_argument("--ema", type=decay, default=None, metavar="DECAY",
                   help="keep an exponential moving average of the weights, DECAY in [0, 1) "
                        "(BatchNorm statistics recomputed); saved as model_ema.npz")


def _value(args: argparse.Namespace, dest: str):
    # NOTE: getattr: namespaces of runs saved before these options existed lack them
    return getattr(args, dest, None)


def refuse_resume(given: set[str]) -> None:
    """Refuse the averaging options with ``--resume`` (exit 2)."""
    for dest in DESTS:
        if dest in given:
            raise UsageError(f"argument --{dest.replace('_', '-')}: not with --resume (a run "
                             "that averages models saves no checkpoint)")


def resolve(args: argparse.Namespace) -> None:
    """Refuse the combinations that make no sense (exit 2); call after ``options.resolve``."""
    ensemble, swa_start, ema = (_value(args, d) for d in ("ensemble", "swa_start", "ema"))
    for dest in ("swa_lr", "swa_every_steps"):
        if _value(args, dest) is not None and swa_start is None:
            raise UsageError(f"argument --{dest.replace('_', '-')}: needs --swa-start")
    if ensemble is not None and (swa_start is not None or ema is not None):
        other = "--swa-start" if swa_start is not None else "--ema"
        raise UsageError(f"argument --ensemble: not with {other} (average the weights of one "
                         "model, or the predictions of several)")
    if swa_start is not None and swa_start > args.epochs:
        raise UsageError(f"argument --swa-start: epoch {swa_start} is after the last epoch "
                         f"(--epochs {args.epochs}); nothing would be averaged")
    if _value(args, "swa_lr") is not None and options.OPTIMIZERS[args.optimizer].closure:
        raise UsageError(f"argument --swa-lr: --optimizer {args.optimizer} picks its step "
                         "length by a line search; it takes no SWA lr")


def averages(args: argparse.Namespace) -> bool:
    """Whether the run averages models (and so saves no checkpoint)."""
    return any(_value(args, d) is not None for d in ("ensemble", "swa_start", "ema"))


def weight_averagers(args: argparse.Namespace, train_set, bs: int) -> dict:
    """``{"swa": SWA, "ema": EMA}`` callbacks for the options given (possibly empty).

    They go after the schedule in ``fit``'s callbacks: ``--swa-lr`` overrides its lr.
    """
    if _value(args, "swa_start") is None and _value(args, "ema") is None:
        return {}
    bn_loader = DataLoader(train_set, batch_size=bs)
    out: dict = {}
    if args.swa_start is not None:
        out["swa"] = SWA(start_epoch=args.swa_start, every_steps=args.swa_every_steps,
                         swa_lr=args.swa_lr, bn_loader=bn_loader)
    if args.ema is not None:
        out["ema"] = EMA(decay=args.ema, bn_loader=bn_loader)
    return out


def finish_averagers(averagers: dict, test_loader, out: Path, summary: dict,
                     say: Callable[[str], object]) -> None:
    """Evaluate each averaged model on the test set, save it and add it to ``summary``."""
    for key, cb in averagers.items():
        n = int(cb.averaged_model.n_averaged.data)
        loss, acc = evaluate(cb.averaged_model, test_loader)
        save_weights(cb.module, out / f"model_{key}.npz")
        record = {"n_averaged": n, "test_loss": loss, "test_accuracy": acc,
                  "weights": f"model_{key}.npz"}
        if key == "swa":
            record = {"start_epoch": cb.start_epoch, "every_steps": cb.every_steps,
                      "swa_lr": cb.swa_lr, **record}
        else:
            record = {"decay": cb.decay, **record}
        summary[key] = record
        say(f"{key.upper()}: test accuracy {acc:.4f} (loss {loss:.4f}), {n} weights averaged")


def fit_ensemble(args: argparse.Namespace, build_model: Callable, train_set, bs: int,
                 val_loader, test_loader, monitor: str, say: Callable[[str], object]):
    """Train ``args.ensemble`` members; return ``(ensemble, history, summary record)``.

    The history is every member's, each record tagged with ``member`` and ``seed``.
    """
    k = args.ensemble
    seeds = [args.seed + i for i in range(k)]

    def loader(seed: int) -> DataLoader:
        say(f"ensemble member {seed - args.seed + 1}/{k} (seed {seed})")
        return DataLoader(train_set, batch_size=bs, shuffle=True, seed=seed)

    def per_member(model, optimizer) -> dict:
        n_batches = len(DataLoader(train_set, batch_size=bs))
        schedule = options.build_schedule(optimizer, args, n_batches, monitor)
        return {"callbacks": [] if schedule is None else [schedule],
                "regularizer": options.regularizer(model.parameters(), args)}

    ens, histories = train_ensemble(
        build_model, lambda p: options.build_optimizer(p, args), loader, args.epochs,
        seeds=seeds, val_loader=val_loader, per_member=per_member,
        progress=not args.quiet, log=say, clip_grad_norm=args.clip_norm)
    member_acc = [evaluate(m, test_loader)[1] for m in ens.members]
    history = [{"member": i, "seed": s, **h}
               for i, (s, hist) in enumerate(zip(seeds, histories)) for h in hist]
    record = {"members": k, "seeds": seeds, "member_test_accuracy": member_acc}
    return ens, history, record
