"""``deepgrad search``: hyperparameter search for an MLP, with random search or Optuna.

Each trial trains with the library's fit loop on the first ``--limit-train`` training samples
less a ``--val-split`` validation split, and is scored by its validation accuracy (the test
set is never looked at). The work is :mod:`deepgrad.search`; this module parses and checks the
options, loads the data and prints progress. Bad usage raises
:class:`~deepgrad._cli_validation.UsageError` (exit status 2).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from deepgrad import _cli_validation as check
from deepgrad._cli_validation import UsageError
from deepgrad.data import DATASETS, default_data_root
from deepgrad.search import (
    BACKENDS,
    OPTIMIZERS,
    OptunaUnavailable,
    SearchData,
    SearchSpace,
    StudyError,
    import_optuna,
    run_search,
    sort_trials,
    write_reports,
)
from deepgrad.search.backends import DEFAULT_STUDY_NAME

DEFAULT_TRIALS, DEFAULT_EPOCHS, DEFAULT_LIMIT, DEFAULT_VAL_SPLIT = 20, 2, 10000, 0.2


def _split(text: str) -> list[str]:
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
    return parts


def _int_list(minimum: int) -> Callable[[str], tuple[int, ...]]:
    def parse(text: str) -> tuple[int, ...]:
        values = []
        for p in _split(text):
            try:
                values.append(int(p))
            except ValueError:
                raise argparse.ArgumentTypeError(f"expected integers, got {text!r}") from None
        if any(v < minimum for v in values):
            raise argparse.ArgumentTypeError(f"every value must be >= {minimum}, got {text!r}")
        return tuple(dict.fromkeys(values))
    return parse


def _range(positive: bool, below_one: bool = False) -> Callable[[str], tuple[float, float]]:
    def parse(text: str) -> tuple[float, float]:
        parts = _split(text)
        if len(parts) == 1:
            parts = parts * 2  # a single value fixes the hyperparameter
        if len(parts) != 2:
            raise argparse.ArgumentTypeError(f"expected LOW,HIGH, got {text!r}")
        lo, hi = (check._number(p, float) for p in parts)
        if lo > hi:
            raise argparse.ArgumentTypeError(f"LOW must be <= HIGH, got {text!r}")
        if positive and lo <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0 (a log-uniform range), got {text!r}")
        if lo < 0:
            raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
        if below_one and hi >= 1:
            raise argparse.ArgumentTypeError(f"must lie in [0, 1), got {text!r}")
        return lo, hi
    return parse


def _weight_decay_range(text: str) -> tuple[float, float]:
    lo, hi = _range(positive=False)(text)
    if lo == 0 and hi > 0:
        raise argparse.ArgumentTypeError(f"a log-uniform range needs LOW > 0 (or 0 to turn "
                                         f"weight decay off), got {text!r}")
    return lo, hi


def _optimizers(text: str) -> tuple[str, ...]:
    names = [p.lower() for p in _split(text)]
    unknown = [n for n in names if n not in OPTIMIZERS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown optimizer(s) {', '.join(unknown)}; choose "
                                         f"from {', '.join(OPTIMIZERS)}")
    return tuple(dict.fromkeys(names))


def _fraction(text: str) -> float:
    value = check._number(text, float)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {text!r}")
    return value


def _top(text: str) -> float:
    value = check._number(text, float)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a fraction in (0, 1], got {text!r}")
    return value


def add_parser(sub) -> None:
    """Add the ``search`` subcommand to the ``deepgrad`` subparsers."""
    d = SearchSpace()
    p = sub.add_parser(
        "search", help="hyperparameter search for an MLP (random search or Optuna)",
        description="Train --trials MLPs with hyperparameters drawn from the ranges below, "
                    "score each on a validation split of the (limited) training set, and "
                    "write trials.csv, results.md and search.png to the run directory. The "
                    "test set is not used.")
    p.add_argument("--dataset", default="mnist", metavar="{" + ",".join(DATASETS) + ",PATH.npz}",
                   help="an MNIST-family name or an .npz file in the Keras layout "
                        "(default: mnist)")
    p.add_argument("--data-dir", type=Path, default=None, metavar="DIR",
                   help="where the MNIST-family files are (default: $DEEPGRAD_DATA, else "
                        "~/.cache/deepgrad)")
    p.add_argument("--download", action="store_true", help="download missing data files")
    p.add_argument("--trials", type=check.positive_int, default=DEFAULT_TRIALS, metavar="N",
                   help=f"trials (per round with --narrow) (default: {DEFAULT_TRIALS})")
    p.add_argument("--epochs", type=check.positive_int, default=DEFAULT_EPOCHS, metavar="E",
                   help=f"training epochs per trial (default: {DEFAULT_EPOCHS})")
    p.add_argument("--limit-train", type=check.positive_int, default=DEFAULT_LIMIT,
                   metavar="N", help="use the first N training samples, validation split "
                   f"included (default: {DEFAULT_LIMIT})")
    p.add_argument("--val-split", type=_fraction, default=DEFAULT_VAL_SPLIT, metavar="F",
                   help=f"fraction held out for validation (default: {DEFAULT_VAL_SPLIT})")
    p.add_argument("--backend", choices=BACKENDS, default="random",
                   help="random search (built in) or optuna (TPE; pip install optuna) "
                        "(default: random)")
    p.add_argument("--storage", default=None, metavar="URL",
                   help="optuna: a database URL Optuna accepts, shared by every worker of "
                        "the study (default: sqlite:///RUN_DIR/study.db)")
    p.add_argument("--study-name", default=DEFAULT_STUDY_NAME, metavar="NAME",
                   help=f"optuna: the study's name (default: {DEFAULT_STUDY_NAME})")
    p.add_argument("--seed", type=check.non_negative_int, default=0, metavar="S",
                   help="seed of the draws (the sampler) and the trials; give each optuna "
                        "worker its own (default: 0)")
    p.add_argument("--split-seed", type=check.non_negative_int, default=0, metavar="S",
                   help="seed of the validation split; keep it the same for every worker of "
                        "a study, so that all trials are scored on one split (default: 0)")
    p.add_argument("--out", type=Path, default=None, metavar="RUN_DIR",
                   help="run directory (default: runs/search-<dataset>-<timestamp>)")
    p.add_argument("--lr-range", type=_range(positive=True), default=d.lr, metavar="LO,HI",
                   help="learning rates, log-uniform (default: 1e-4,1)")
    p.add_argument("--optimizers", type=_optimizers, default=d.optimizers, metavar="NAMES",
                   help=f"from {','.join(OPTIMIZERS)} (default: {','.join(d.optimizers)})")
    p.add_argument("--batch-sizes", type=_int_list(1), default=d.batch_sizes, metavar="B,..",
                   help=f"(default: {','.join(map(str, d.batch_sizes))})")
    p.add_argument("--weight-decay-range", type=_weight_decay_range, default=d.weight_decay,
                   metavar="LO,HI", help="log-uniform, or 0 for none (default: 1e-6,1e-2)")
    p.add_argument("--widths", type=_int_list(1), default=d.widths, metavar="W,..",
                   help="units per hidden layer (default: "
                        f"{','.join(map(str, d.widths))})")
    p.add_argument("--depths", type=_int_list(0), default=d.depths, metavar="D,..",
                   help="hidden layers, 0 for a linear model (default: "
                        f"{','.join(map(str, d.depths))})")
    p.add_argument("--dropout-range", type=_range(positive=False, below_one=True),
                   default=d.dropout, metavar="LO,HI",
                   help="dropout after each hidden layer, uniform in [0, 1) (default: 0,0.5)")
    p.add_argument("--narrow", action="store_true",
                   help="random: then run --trials more trials in the ranges narrowed around "
                        "the best --top of the first round (choose broadly, then narrow)")
    p.add_argument("--top", type=_top, default=0.25, metavar="F",
                   help="the fraction of trials --narrow keeps, at least 2 (default: 0.25)")
    p.add_argument("--no-plot", action="store_true", help="skip search.png")
    p.add_argument("--quiet", action="store_true", help="print only the final lines")
    p.set_defaults(handler=search)


def _load(args: argparse.Namespace):
    """(name, x_train, y_train, num_classes), limited to --limit-train samples."""
    from deepgrad.data import load_arrays, load_npz

    spec = args.dataset
    try:
        if spec.lower().endswith(".npz") or "/" in spec or "\\" in spec:
            x, y, _, _, k = load_npz(spec)
            name = Path(spec).stem
        elif spec.lower() in DATASETS:
            root = args.data_dir if args.data_dir is not None else default_data_root()
            x, y, _, _ = load_arrays(spec.lower(), root, download=args.download)
            name, k = spec.lower(), len(DATASETS[spec.lower()].classes)
        else:
            raise UsageError(f"unknown dataset {spec!r}: expected one of "
                             f"{', '.join(DATASETS)}, or a path to an .npz file")
    except FileNotFoundError as exc:
        raise UsageError(str(exc).replace("pass download=True", "pass --download")) from None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return name, x[:args.limit_train], y[:args.limit_train], k


def _check(args: argparse.Namespace) -> None:
    """Refuse options that do not fit together, before any data is loaded."""
    if args.backend == "optuna":
        if args.narrow:
            raise UsageError("argument --narrow: applies to --backend random (Optuna's TPE "
                             "narrows by itself)")
        try:
            import_optuna()
        except OptunaUnavailable as exc:
            raise UsageError(str(exc)) from None
    elif args.storage is not None:
        raise UsageError("argument --storage: applies to --backend optuna")
    elif args.study_name != DEFAULT_STUDY_NAME:
        raise UsageError("argument --study-name: applies to --backend optuna")
    if args.narrow and args.trials < 2:
        raise UsageError("argument --narrow: needs --trials >= 2 to narrow around the best")


def _line(r: dict) -> str:
    hidden = "x".join([str(r["width"])] * r["depth"]) or "none"
    result = f"val acc {r['val_acc']:.4f}" if r["status"] == "ok" else r["status"]
    return (f"trial {r['trial']:>3} [round {r['round']}] {r['optimizer']:<8} "
            f"lr={r['lr']:.3g} bs={r['batch_size']} wd={r['weight_decay']:.2g} "
            f"hidden={hidden} dropout={r['dropout']:.2f}: {result} ({r['seconds']:.1f}s)")


def search(args: argparse.Namespace) -> int:
    """Run the search and write its reports; returns the exit status."""
    say = (lambda line: None) if args.quiet else print
    _check(args)
    space = SearchSpace(lr=args.lr_range, batch_sizes=args.batch_sizes,
                        weight_decay=args.weight_decay_range, depths=args.depths,
                        widths=args.widths, dropout=args.dropout_range,
                        optimizers=args.optimizers)
    name, x, y, k = _load(args)
    try:
        data = SearchData.from_arrays(x, y, args.val_split, seed=args.split_seed,
                                      num_classes=k)
    except ValueError as exc:
        raise UsageError(f"--limit-train/--val-split: {exc}") from None
    out = args.out or Path("runs") / f"search-{name}-{datetime.now():%Y%m%d-%H%M%S}"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the run directory {out}: {exc.strerror or exc}") \
            from None
    storage = args.storage
    if args.backend == "optuna":
        optuna = import_optuna()
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # the trial lines say enough
        storage = storage or f"sqlite:///{out.resolve() / 'study.db'}"
    say(f"search ({args.backend}) on {name}: {len(data.train)} train / {len(data.val)} "
        f"validation samples, {args.trials} trial(s)"
        + (" x 2 rounds" if args.narrow else "") + f" of {args.epochs} epoch(s)"
        + (f"; study {args.study_name!r} in {storage}" if storage else ""))
    try:
        result = run_search(space, data, args.trials, args.epochs, seed=args.seed,
                            backend=args.backend, narrow_rounds=int(args.narrow),
                            top=args.top, storage=storage, study_name=args.study_name,
                            log=lambda r: say(_line(r)),
                            log_space=lambda r, s: say(f"round {r}: {s.summary()}"))
    except StudyError as exc:
        raise UsageError(str(exc)) from None
    settings = {"dataset": name, "backend": args.backend, "train samples": len(data.train),
                "validation samples": len(data.val), "epochs per trial": args.epochs,
                "seed": args.seed, "split seed": args.split_seed}
    if storage:
        settings.update(storage=storage, study=args.study_name)
    paths = write_reports(out, result.trials, result.spaces, settings, plot=not args.no_plot)
    ok = [r for r in sort_trials(result.trials) if r["status"] == "ok"]
    if ok:
        print(f"best: {_line(ok[0])}")
    else:
        print("no trial completed: every trial diverged (try a lower --lr-range)")
    print(f"wrote {', '.join(p.name for p in paths.values())} to {out}")
    return 0
