"""Where a workload's step spends its time: ``python -m bench.profile [--workload W1]``.

Prints, for deepgrad and torch side by side, the median time of each phase of a step
(zero_grad, forward, loss, backward, optimizer step; interleaved blocks as in the harness),
then a cProfile of deepgrad's steps: the functions with the most own time, and the total time
spent in each primitive's ``forward`` and ``backward`` (the ops' files under deepgrad/ops).
"""

from __future__ import annotations

import argparse
import os
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n")[0])
    p.add_argument("--workload", default="W1")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=20, help="interleaved blocks per library")
    p.add_argument("--inner", type=int, default=10, help="steps per block")
    p.add_argument("--profile-steps", type=int, default=200, help="deepgrad steps under cProfile")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--max-background", type=float, default=0.25)
    p.add_argument("--max-wait", type=float, default=600.0)
    p.add_argument("--data", default=None)
    args = p.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    if _REPO not in sys.path:
        sys.path.insert(0, _REPO)

    import cProfile
    import pstats
    import time

    import numpy as np

    from bench import harness
    from bench.registry import WORKLOADS

    harness.set_threads(args.threads)
    wl = WORKLOADS[args.workload]()
    case = wl.build(args.data)
    if case.phases is None:
        print(f"{args.workload} does not expose phases", file=sys.stderr)
        return 2
    case.parity()
    names = list(case.phases)
    for name in names:
        for _ in range(20):
            case.phases[name]()
    phase_times = {n: [] for n in names}
    monitor = harness.CpuMonitor()
    deadline = time.perf_counter() + args.max_wait
    loads = []
    for r in range(args.repeats):
        if args.max_background >= 0:
            harness.wait_for_quiet(monitor, args.max_background, deadline)
        monitor.mark()
        for name in names if r % 2 == 0 else names[::-1]:
            time.sleep(0.05)
            case.phases[name]()
            for _ in range(args.inner):
                phase_times[name].append(case.phases[name]())
        loads.append(monitor.others_cores())
    print(f"{wl.name} {wl.title}: median ms per phase ({args.repeats} x {args.inner} steps, "
          f"background load median {np.median(loads):.2f} cores)")
    keys = list(phase_times[names[0]][0])
    print(f"{'phase':>10} " + " ".join(f"{n:>10}" for n in names))
    totals = {n: 0.0 for n in names}
    for k in keys + ["total"]:
        row = []
        for n in names:
            if k == "total":
                v = totals[n]
            else:
                v = float(np.median([d[k] for d in phase_times[n]])) * 1e3
                totals[n] += v
            row.append(f"{v:10.3f}")
        print(f"{k:>10} " + " ".join(row))

    prof = cProfile.Profile()
    step = case.deepgrad_step
    chunk = 20
    for _ in range(0, args.profile_steps, chunk):
        # Profile in short chunks, each started on a quiet machine with idle worker threads.
        if args.max_background >= 0:
            harness.wait_for_quiet(monitor, args.max_background, deadline)
        harness.wait_own_idle()
        step()
        prof.enable()
        for _ in range(chunk):
            step()
        prof.disable()
    args.profile_steps = -(-args.profile_steps // chunk) * chunk
    stats = pstats.Stats(prof)
    print(f"\ncProfile of {args.profile_steps} deepgrad steps (ms per step), by own time:")
    rows = []
    for (file, line, func), (_, ncalls, tottime, cumtime, _) in stats.stats.items():
        path = os.path.relpath(file, _REPO) if file.startswith(_REPO) else file
        rows.append((tottime, cumtime, ncalls, f"{path}:{line}({func})"))
    rows.sort(reverse=True)
    print(f"{'own ms':>8} {'cum ms':>8} {'calls':>7}  function")
    per = 1e3 / args.profile_steps
    for tottime, cumtime, ncalls, where in rows[:args.top]:
        print(f"{tottime * per:8.3f} {cumtime * per:8.3f} {ncalls / args.profile_steps:7.1f}  "
              f"{where}")
    print("\nprimitives (deepgrad/ops), cumulative ms per step:")
    for _, cumtime, ncalls, where in sorted(rows, key=lambda r: -r[1]):
        if where.startswith("deepgrad/ops/") and ("(forward)" in where or "(backward)" in where):
            print(f"{cumtime * per:8.3f} {ncalls / args.profile_steps:7.1f}  {where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
