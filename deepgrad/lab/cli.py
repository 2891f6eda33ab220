"""``deepgrad lab``: list the claims, or run them and write their reports.

    deepgrad lab list
    deepgrad lab run NAME|all [--budget smoke|quick|full] [--seeds N] [--data-dir DIR]
                              [--out DIR]

Exit status: 0 when every claim ran (whatever its verdict: a claim that does not hold is a
finding, not a failure); 1 when a claim's experiment failed; 2 for bad usage or missing data
(one line ``deepgrad: error: ...``).
"""

from __future__ import annotations

import sys

from deepgrad._cli_validation import positive_int

PROG = "deepgrad"


def add_lab_parser(subparsers) -> None:
    """Add ``lab`` (with ``list`` and ``run``) to the ``deepgrad`` subparsers."""
    from deepgrad.lab.core import BUDGETS

    p = subparsers.add_parser(
        "lab", help="run the lab: experiments that test claims of deep learning lore",
        description="Each claim of deep learning lore (BatchNorm speeds convergence, He init "
                    "beats Xavier for deep ReLU networks, ...) is an experiment run over "
                    "several seeds, with plots, results.json and a verdict computed from the "
                    "runs. `deepgrad lab list` shows them.")
    lab_sub = p.add_subparsers(dest="lab_command", metavar="ACTION", required=True)
    lp = lab_sub.add_parser("list", help="list the claims, one per line",
                            description="List the claims, one per line: name and title.")
    lp.set_defaults(handler=run_lab_command)
    rp = lab_sub.add_parser(
        "run", help="run a claim (or all) and write its report",
        description="Run a claim's experiment (or every claim with `all`) and write, per "
                    "claim, OUT/NAME/results.json, PNG plots, report.md and a self-contained "
                    "report.html; `all` also writes OUT/index.html.")
    rp.add_argument("name", metavar="NAME", help="a claim name from `deepgrad lab list`, or all")
    rp.add_argument("--budget", choices=BUDGETS, default="quick",
                    help="smoke: seconds (CI); quick: minutes on 2 cores; full: the "
                         "literature's setting (default: quick)")
    rp.add_argument("--seeds", type=positive_int, default=None, metavar="N",
                    help="seeds 0..N-1 per variant (default: 1 smoke, 3 quick, 5 full)")
    rp.add_argument("--data-dir", default=None, metavar="DIR",
                    help="folder with the MNIST IDX files (default: $DEEPGRAD_DATA, else "
                         "~/.cache/deepgrad)")
    rp.add_argument("--out", default="lab-results", metavar="DIR",
                    help="output folder; each claim writes DIR/NAME/ (default: lab-results)")
    rp.set_defaults(handler=run_lab_command)


def _fail(message: str, status: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def run_lab_command(args) -> int:
    """Run ``deepgrad lab list`` or ``deepgrad lab run`` from parsed arguments.

    Returns:
        The exit status (see the module docstring).
    """
    from deepgrad.lab.registry import CLAIMS

    if args.lab_command == "list":
        width = max((len(n) for n in CLAIMS), default=0)
        for name, claim in CLAIMS.items():
            print(f"{name:<{width}}  {claim.title}")
        return 0
    if args.lab_command != "run":
        return _fail(f"unknown lab action {args.lab_command!r}", 2)
    from deepgrad.data import default_data_root
    from deepgrad.lab.data import check_mnist
    from deepgrad.lab.runner import run_claims

    if args.name != "all" and args.name not in CLAIMS:
        return _fail(f"unknown claim {args.name!r}; available: {', '.join(CLAIMS)}, all", 2)
    data_dir = args.data_dir if args.data_dir is not None else default_data_root()
    try:
        check_mnist(data_dir)
    except FileNotFoundError as exc:
        return _fail(f"lab needs MNIST: {exc}", 2)
    try:
        results = run_claims(args.name, budget=args.budget, seeds=args.seeds,
                             data_dir=data_dir, out_dir=args.out)
    except FileNotFoundError as exc:
        return _fail(str(exc), 2)
    except OSError as exc:
        return _fail(f"cannot write the results: {exc}", 1)
    failed = [r["name"] for r in results if "error" in r]
    for r in results:
        if "error" in r:
            print(f"{r['name']:<14} FAILED: {r['error']}")
        else:
            v = r["results"]["verdict"]
            word = "holds" if v["holds"] else "does NOT hold"
            print(f"{r['name']:<14} {word:<13} {r['elapsed_s']:7.1f}s  {r['out_dir']}/report.html")
    if failed:
        return _fail(f"experiment(s) failed: {', '.join(failed)}", 1)
    return 0
