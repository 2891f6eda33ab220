"""Command line: ``python -m bench`` (or ``python bench/run.py``) from the repository root.

Examples::

    python -m bench                                   # all workloads, 2 threads
    python -m bench --workloads W1 --threads 2 --repeats 40
    python -m bench --out bench/results/latest.json --update-docs docs/benchmarks.md

The thread count is fixed through ``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS``/
``MKL_NUM_THREADS`` *before* NumPy and torch are imported (this module imports neither at the
top), then pinned again at run time by :func:`bench.harness.set_threads`.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(_HERE)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--workloads", nargs="+", default=None,
                   help="workload names (default: all registered), e.g. W1")
    p.add_argument("--threads", type=int, default=2, help="threads for both libraries")
    p.add_argument("--repeats", type=int, default=30, help="timed blocks per library")
    p.add_argument("--inner", type=int, default=10, help="steps per timed block")
    p.add_argument("--warmup", type=int, default=20, help="untimed steps before timing")
    p.add_argument("--gap-ms", type=float, default=50.0,
                   help="sleep before each block so the other library's workers go idle")
    p.add_argument("--max-background", type=float, default=0.25,
                   help="redo a round during which other processes used more cores than this "
                   "(the machine may be shared); negative: keep every round")
    p.add_argument("--max-wait", type=float, default=900.0,
                   help="seconds each measurement may spend waiting for a quiet machine")
    p.add_argument("--gemm-size", type=int, default=2048, help="n of the n x n roofline GEMM")
    p.add_argument("--data", default=None, help="MNIST directory (default ../shared/datasets/"
                   "mnist; synthetic data when absent)")
    p.add_argument("--out", default=os.path.join("bench", "results", "latest.json"),
                   help="JSON results file; the markdown report goes next to it (.md)")
    p.add_argument("--update-docs", default=None, metavar="MD",
                   help="also splice the report between the bench markers of this file")
    p.add_argument("--list", action="store_true", help="list the workloads and exit")
    return p


def _pin_thread_env(n: int) -> None:
    """Set the thread variables; they only take effect before NumPy/torch are imported."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.threads < 1:
        print("bench: error: --threads must be >= 1", file=sys.stderr)
        return 2
    if "numpy" in sys.modules or "torch" in sys.modules:
        print("bench: note: NumPy/torch were imported before the thread variables were set; "
              "pinning at run time only", file=sys.stderr)
    _pin_thread_env(args.threads)
    if _REPO not in sys.path:
        sys.path.insert(0, _REPO)

    from bench import harness
    from bench.registry import WORKLOADS

    if args.list:
        for name, cls in WORKLOADS.items():
            print(f"{name}: {cls.title} (batch {cls.batch_size})")
        return 0
    names = args.workloads or list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        print(f"bench: error: unknown workload(s) {unknown}; known: {list(WORKLOADS)}",
              file=sys.stderr)
        return 2

    threads = harness.set_threads(args.threads)
    machine = harness.machine_info()
    print(f"machine: {machine['cpu']}, {machine['logical_cpus']} CPUs; threads {threads}",
          flush=True)
    max_bg = None if args.max_background < 0 else args.max_background
    roof = harness.gemm_roofline(args.gemm_size, max_background=max_bg,
                                 max_wait=args.max_wait)
    print(f"GEMM roofline float32 n={roof['n']}: numpy {roof['numpy_gflops']} GFLOP/s, "
          f"torch {roof['torch_gflops']} GFLOP/s", flush=True)

    rows = []
    for name in names:
        wl = WORKLOADS[name]()
        case = wl.build(args.data)
        parity = case.parity()
        stats, load = harness.time_interleaved(
            {"deepgrad": case.deepgrad_step, "torch": case.torch_step},
            repeats=args.repeats, inner=args.inner, warmup=args.warmup,
            gap=args.gap_ms / 1e3, max_background=max_bg, max_wait=args.max_wait)
        row = harness.summarize(wl, wl.batch_size, wl.flops_per_step(), stats,
                                roof["numpy_gflops"], parity, load)
        row["data"] = case.data_source
        rows.append(row)
        print(f"{name}: deepgrad {row['deepgrad']['median_ms']:.3f} ms, torch "
              f"{row['torch']['median_ms']:.3f} ms, ratio {row['ratio']:.2f}", flush=True)

    command = "python -m bench " + " ".join(shlex.quote(a) for a in
                                            (argv if argv is not None else sys.argv[1:]))
    result = {"command": command.strip(), "timestamp": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
              "machine": machine, "threads": threads, "roofline": roof,
              "settings": {"repeats": args.repeats, "inner": args.inner, "warmup": args.warmup,
                           "gap_ms": args.gap_ms, "max_background": max_bg,
                           "max_wait_s": args.max_wait},
              "workloads": rows}
    report = harness.markdown_report(result)
    print()
    print(report)
    if args.out:
        harness.write_json(result, args.out)
        md = os.path.splitext(args.out)[0] + ".md"
        with open(md, "w") as fh:
            fh.write(report)
        print(f"wrote {args.out} and {md}")
    if args.update_docs:
        harness.splice_into_doc(args.update_docs, report)
        print(f"updated {args.update_docs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
