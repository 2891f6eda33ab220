"""``deepgrad diagnose``: inspect a network's per-layer activations and gradients at
initialisation and print the table and the findings (saturation, dead units, vanishing or
exploding gradients). The work is :func:`deepgrad.diagnostics.run_diagnose`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from deepgrad import _cli_validation as check
from deepgrad._cli_validation import UsageError
from deepgrad.data import default_data_root
from deepgrad.diagnostics import ACTIVATIONS, INITS, run_diagnose


def add_parser(sub) -> None:
    """Add the ``diagnose`` subcommand to the ``deepgrad`` subparsers."""
    p = sub.add_parser(
        "diagnose", help="per-layer activation/gradient statistics of a network at init",
        description="Build a deep MLP (or a registered model), run one batch of MNIST (or "
                    "random inputs with --synthetic) through it and print each layer's "
                    "activation mean/std, saturated and dead fractions, gradient norms, and "
                    "the findings (Glorot & Bengio 2010; He et al. 2015).")
    p.add_argument("--model", default="mlp",
                   help="'mlp' (depth x width, the activation and init below) or a registered "
                        "model name (default: mlp)")
    p.add_argument("--depth", type=check.positive_int, default=10, help="hidden layers (mlp)")
    p.add_argument("--width", type=check.positive_int, default=256, help="units per layer")
    p.add_argument("--activation", choices=ACTIVATIONS, default=None,
                   help="activation of the mlp (default: relu)")
    p.add_argument("--init", choices=INITS, default="he", help="weight initialisation")
    p.add_argument("--init-std", type=check.positive_float, default=1.0,
                   help="std of --init normal (default: 1)")
    p.add_argument("--batch", type=check.positive_int, default=256, help="samples in the batch")
    p.add_argument("--dataset", default="mnist", help="MNIST-family data set (default: mnist)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="directory of the IDX files (default: $DEEPGRAD_DATA or "
                        "~/.cache/deepgrad)")
    p.add_argument("--download", action="store_true", help="fetch missing data files")
    p.add_argument("--synthetic", action="store_true", help="N(0, 1) inputs instead of data")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=check.positive_float, default=1e-2,
                   help="learning rate for the update ratios (default: 0.01)")
    p.add_argument("--eval-mode", action="store_true", help="inspect in eval mode")
    p.add_argument("--out", type=Path, default=None,
                   help="also write report.json and histogram PNGs into this directory")
    p.set_defaults(handler=diagnose)


def diagnose(args: argparse.Namespace) -> int:
    """Run :func:`run_diagnose` and print its table and flags."""
    data_dir = None if args.synthetic else (args.data_dir or default_data_root())
    try:
        report = run_diagnose(args.model, args.depth, args.width, args.activation, args.init,
                              batch=args.batch, data_dir=data_dir, synthetic=args.synthetic,
                              dataset=args.dataset, download=args.download, seed=args.seed,
                              lr=args.lr, init_std=args.init_std, train=not args.eval_mode)
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    print(report.table())
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "report.json").write_text(json.dumps(report.to_dict(), indent=2))
        report.save_histograms(args.out)
        print(f"report and histograms written to {args.out}")
    return 0
