"""Timing harness: deepgrad and PyTorch CPU in one process, same threads, interleaved.

Method (what makes two numbers comparable):

* **Threads.** ``bench.run`` sets ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and
  ``MKL_NUM_THREADS`` before NumPy or torch is imported; :func:`set_threads` then calls
  ``torch.set_num_threads(n)`` and sets NumPy's BLAS pool at run time too (``threadpoolctl``
  when installed, else the OpenBLAS ``*_set_num_threads`` symbol through ctypes), and reads the
  count back so the report states what was actually used.
* **Interleaving.** Each repeat times one block of ``inner`` steps per library, alternating the
  order from repeat to repeat (A B, B A, ...), so that thermal or frequency drift and
  background load fall on both libraries alike. Each block starts with ``block_warmup``
  untimed steps (the other library's thread pool has just been running) and is separated from
  the previous one by ``gap`` seconds and then by :func:`wait_own_idle`, so that the other
  library's spinning OpenMP/OpenBLAS worker threads are asleep before the clock starts.
* **Shared machines.** Before each round (one block of each library) the harness waits until
  other processes use at most ``max_background`` cores (read from /proc/stat), and a round
  during which they used more is discarded and redone, within ``max_wait`` seconds; the
  report gives the background load of the kept rounds and how many were discarded.
* **Statistics.** Per-step time of a block = block time / ``inner``; the report gives the
  median over repeats and the inter-quartile range (q1, q3).
* **Roofline.** The float32 GEMM rate of the machine: NumPy ``a @ b`` of two n x n float32
  matrices (deepgrad's compute path, so its ceiling), and torch's for reference.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field

import numpy as np

THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


# ---------------------------------------------------------------------------- threads
_CONFIG_NAMES = ("scipy_openblas_get_config64_", "openblas_get_config64_", "openblas_get_config")
_CORE_NAMES = ("scipy_openblas_get_corename64_", "openblas_get_corename64_",
               "openblas_get_corename")


def _blas_threads_set(n: int) -> str:
    """Set NumPy's BLAS to ``n`` threads (after deepgrad.set_num_threads, which sets OpenBLAS
    through ctypes itself); return how."""
    from deepgrad import _parallel

    try:
        from threadpoolctl import threadpool_limits  # optional
    except ImportError:
        threadpool_limits = None
    if threadpool_limits is not None:
        threadpool_limits(limits=n, user_api="blas")
        return "threadpoolctl"
    if _parallel.blas_num_threads() is not None:
        return "openblas_set_num_threads (ctypes, via deepgrad.set_num_threads)"
    return "environment only (OPENBLAS_NUM_THREADS/OMP_NUM_THREADS before numpy import)"


def blas_threads() -> int | None:
    """How many threads NumPy's BLAS uses now (None if it cannot be read)."""
    try:
        from threadpoolctl import threadpool_info

        counts = [d["num_threads"] for d in threadpool_info() if d.get("user_api") == "blas"]
        if counts:
            return int(counts[0])
    except ImportError:
        pass
    from deepgrad import _parallel

    return _parallel.blas_num_threads()


def set_threads(n: int) -> dict:
    """Make torch, NumPy's BLAS and deepgrad's own threads all ``n``; return what was set and
    read back."""
    import torch

    import deepgrad

    torch.set_num_threads(n)
    deepgrad.set_num_threads(n)
    how = _blas_threads_set(n)
    got = {"requested": n, "torch": torch.get_num_threads(), "numpy_blas": blas_threads(),
           "deepgrad": deepgrad.get_num_threads(),
           "numpy_blas_set_via": how,
           "env": {k: os.environ.get(k) for k in THREAD_ENV_VARS}}
    if got["torch"] != n or (got["numpy_blas"] is not None and got["numpy_blas"] != n):
        raise RuntimeError(f"could not pin both libraries to {n} threads: {got}")
    return got


# ---------------------------------------------------------------------------- machine
def machine_info() -> dict:
    """CPU model, core count, NumPy/BLAS and torch versions (for the report)."""
    import torch

    cpu = platform.processor() or "unknown"
    flags = ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name") and cpu in ("unknown", "x86_64", ""):
                    cpu = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = line.split(":", 1)[1]
    except OSError:
        pass
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags.split()]
    blas = {}
    try:
        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = {"name": cfg.get("name"), "version": cfg.get("version")}
    except Exception:  # noqa: BLE001 - older NumPy: report what we can
        pass
    from deepgrad._parallel import openblas_library, openblas_symbol

    lib = openblas_library()
    for key, names in (("config", _CONFIG_NAMES), ("core", _CORE_NAMES)):
        fn = openblas_symbol(lib, *names)
        if fn is not None:
            fn.restype = ctypes.c_char_p
            blas[key] = fn().decode()
    parallel = torch.__config__.parallel_info().splitlines()
    torch_blas = next((ln.strip() for ln in parallel if "Math Kernel" in ln or "BLAS" in ln), "")
    return {
        "cpu": cpu, "logical_cpus": os.cpu_count(), "simd": simd,
        "python": platform.python_version(), "numpy": np.__version__, "numpy_blas": blas,
        "torch": torch.__version__, "torch_blas": torch_blas, "platform": platform.platform(),
    }


# ---------------------------------------------------------------------------- statistics
@dataclass
class Stats:
    """Per-step times in milliseconds over the repeats."""

    median_ms: float
    q1_ms: float
    q3_ms: float
    min_ms: float
    n: int
    times_ms: list = field(repr=False)

    @property
    def iqr_ms(self) -> float:
        return self.q3_ms - self.q1_ms

    @classmethod
    def of(cls, seconds) -> Stats:
        ms = np.asarray(seconds, dtype=np.float64) * 1e3
        q1, med, q3 = np.percentile(ms, [25, 50, 75])
        return cls(float(med), float(q1), float(q3), float(ms.min()), int(ms.size),
                   [round(float(v), 5) for v in ms])


class CpuMonitor:
    """CPU time used by *other* processes (in cores) between two readings (Linux /proc/stat).

    This machine is shared; a round of blocks during which others kept the cores busy is not
    a measurement of either library, so :func:`time_interleaved` can discard and redo it.
    """

    def __init__(self):
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.ok = os.path.exists("/proc/stat")
        self.mark()

    def _busy_s(self) -> float:
        with open("/proc/stat") as fh:
            f = [int(v) for v in fh.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait
        return (sum(f[:8]) - f[3] - f[4]) / self.tick

    def mark(self) -> None:
        self.t = time.perf_counter()
        self.busy = self._busy_s() if self.ok else 0.0
        tms = os.times()
        self.own = tms.user + tms.system

    def others_cores(self) -> float:
        """Average cores used by other processes since :meth:`mark` (0 when unknown)."""
        if not self.ok:
            return 0.0
        dt = time.perf_counter() - self.t
        tms = os.times()
        others = (self._busy_s() - self.busy) - (tms.user + tms.system - self.own)
        return max(0.0, others / dt) if dt > 0 else 0.0


def wait_own_idle(window: float = 0.02, threshold: float = 0.1, timeout: float = 1.0) -> float:
    """Sleep until this process's own threads are idle; return the seconds waited.

    NOTE: after a GEMM, OpenBLAS worker threads keep spinning for about 2^28 cycles (~0.1 s
    here) before they sleep. Starting a torch block while they spin would charge that to
    torch (and libgomp workers could likewise slow a deepgrad block), so each block waits
    until the process uses less than ``threshold`` cores over a ``window``.
    """
    t_start = time.perf_counter()
    while time.perf_counter() - t_start < timeout:
        t0, c0 = time.perf_counter(), sum(os.times()[:2])
        time.sleep(window)
        if (sum(os.times()[:2]) - c0) / (time.perf_counter() - t0) < threshold:
            break
    return time.perf_counter() - t_start


def wait_for_quiet(monitor: CpuMonitor, max_background: float, deadline: float,
                   window: float = 0.3) -> float:
    """Sleep in ``window``-second steps until other processes use at most ``max_background``
    cores (or ``deadline``, a perf_counter time, passes); return the last load seen."""
    while True:
        monitor.mark()
        time.sleep(window)
        load = monitor.others_cores()
        if load <= max_background or time.perf_counter() >= deadline:
            return load


def time_interleaved(steps: dict, repeats: int, inner: int, warmup: int, block_warmup: int = 1,
                     gap: float = 0.05, max_background: float | None = None,
                     max_wait: float = 600.0) -> tuple[dict, dict]:
    """Time each callable in ``steps`` (name -> zero-argument step) interleaved.

    Args:
        steps: the step functions; each call is one full training step.
        repeats: number of timed blocks per step function.
        inner: steps per timed block (per-step time = block time / inner).
        warmup: untimed steps of each function before the first block.
        block_warmup: untimed steps at the start of every block.
        gap: seconds of sleep before each block (lets the other library's workers go idle).
        max_background: wait before each round (one block of each function) until other
            processes use at most this many cores, and discard and redo a round during which
            they used more (None: keep every round).
        max_wait: total seconds spent waiting and redoing; after that every round is kept
            whatever the load (the report shows it).

    Returns:
        (name -> :class:`Stats`, load summary: background cores of the kept rounds, rounds
        discarded, seconds waited).
    """
    names = list(steps)
    for name in names:
        for _ in range(warmup):
            steps[name]()
    times = {name: [] for name in names}
    monitor = CpuMonitor()
    kept_load, discarded = [], 0
    t_start = time.perf_counter()
    deadline = t_start + max_wait
    waited = 0.0
    gc.collect()
    r = 0
    while r < repeats:
        if max_background is not None and time.perf_counter() < deadline:
            t0 = time.perf_counter()
            wait_for_quiet(monitor, max_background, deadline)
            waited += time.perf_counter() - t0
        round_times = {}
        monitor.mark()
        for name in names if r % 2 == 0 else names[::-1]:
            fn = steps[name]
            if gap:
                time.sleep(gap)
            wait_own_idle()
            for _ in range(block_warmup):
                fn()
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            round_times[name] = (time.perf_counter() - t0) / inner
        load = monitor.others_cores()
        if (max_background is not None and load > max_background
                and time.perf_counter() < deadline):
            discarded += 1
            continue
        for name, t in round_times.items():
            times[name].append(t)
        kept_load.append(round(load, 3))
        r += 1
    load_info = {"background_cores_median": float(np.median(kept_load)),
                 "background_cores_max": float(np.max(kept_load)),
                 "rounds_discarded": discarded, "max_background": max_background,
                 "waited_s": round(waited, 1)}
    return {name: Stats.of(times[name]) for name in names}, load_info


# ---------------------------------------------------------------------------- roofline
def gemm_roofline(n: int = 2048, repeats: int = 10, max_background: float | None = None,
                  max_wait: float = 600.0) -> dict:
    """Median float32 GEMM rate (GFLOP/s) of NumPy and torch for n x n @ n x n."""
    import torch

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty_like(a)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    tout = torch.empty_like(ta)
    steps = {"numpy": lambda: np.matmul(a, b, out=out),
             "torch": lambda: torch.mm(ta, tb, out=tout)}
    stats, load = time_interleaved(steps, repeats=repeats, inner=1, warmup=2, block_warmup=0,
                                   gap=0.05, max_background=max_background, max_wait=max_wait)
    flops = 2.0 * n**3
    return {"n": n, "dtype": "float32", "load": load,
            **{f"{k}_gflops": round(flops / (s.median_ms * 1e-3) / 1e9, 1)
               for k, s in stats.items()}}


# ---------------------------------------------------------------------------- report
def summarize(workload, batch_size: int, flops: float, stats: dict, roof_gflops: float,
              parity: dict, load: dict) -> dict:
    """One workload's row: ms/step, samples/s, ratio, GFLOP/s and % of the GEMM roofline."""
    row = {"workload": workload.name, "title": workload.title, "batch_size": batch_size,
           "flops_per_step": flops, "parity": parity, "load": load}
    for lib, s in stats.items():
        gflops = flops / (s.median_ms * 1e-3) / 1e9
        row[lib] = {**asdict(s), "iqr_ms": s.iqr_ms,
                    "samples_per_s": batch_size / (s.median_ms * 1e-3),
                    "gflops": gflops, "pct_roofline": 100.0 * gflops / roof_gflops}
    row["ratio"] = row["deepgrad"]["median_ms"] / row["torch"]["median_ms"]
    return row


def markdown_table(rows: list) -> str:
    head = ("| workload | batch | deepgrad ms/step [IQR] | torch ms/step [IQR] | ratio dg/torch "
            "| deepgrad samples/s | torch samples/s | deepgrad GFLOP/s (% roof) "
            "| torch GFLOP/s (% roof) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    lines = []
    for r in rows:
        d, t = r["deepgrad"], r["torch"]
        lines.append(
            f"| {r['workload']}: {r['title']} | {r['batch_size']} "
            f"| {d['median_ms']:.3f} [{d['q1_ms']:.3f}, {d['q3_ms']:.3f}] "
            f"| {t['median_ms']:.3f} [{t['q1_ms']:.3f}, {t['q3_ms']:.3f}] "
            f"| **{r['ratio']:.2f}x** | {d['samples_per_s']:,.0f} | {t['samples_per_s']:,.0f} "
            f"| {d['gflops']:.1f} ({d['pct_roofline']:.0f}%) "
            f"| {t['gflops']:.1f} ({t['pct_roofline']:.0f}%) |")
    return head + "\n".join(lines) + "\n"


def markdown_report(result: dict) -> str:
    """Machine, roofline, table, method and command, as markdown."""
    m, roof, th, st = result["machine"], result["roofline"], result["threads"], result["settings"]
    blas = m["numpy_blas"]
    blas_desc = " ".join(str(blas[k]) for k in ("name", "version") if blas.get(k))
    if blas.get("core"):
        blas_desc += f", kernel {blas['core']}"
    n = roof["n"]
    loads = ", ".join(
        f"{r['workload']} median {r['load']['background_cores_median']:.2f} cores "
        f"({r['load']['rounds_discarded']} rounds redone)" for r in result["workloads"])
    parts = [
        f"Machine: {m['cpu']}, {m['logical_cpus']} logical CPUs ({', '.join(m['simd'])}); "
        f"Python {m['python']}, NumPy {m['numpy']} ({blas_desc}), torch {m['torch']} "
        f"({m['torch_blas']}).",
        f"Threads: {th['requested']} (torch {th['torch']}, NumPy BLAS {th['numpy_blas']}).",
        f"GEMM roofline (float32, {n}x{n} @ {n}x{n}, median): NumPy "
        f"**{roof['numpy_gflops']:.0f} GFLOP/s**, torch {roof['torch_gflops']:.0f} GFLOP/s. "
        f"\"% roof\" below is relative to NumPy's.",
        markdown_table(result["workloads"]).rstrip("\n"),
        f"Timing: {st['repeats']} interleaved blocks of {st['inner']} steps per library after "
        f"{st['warmup']} warm-up steps; median per-step time and [q1, q3]. GFLOP/s counts 3x "
        f"the forward GEMM FLOPs of a step. Background load (other processes) in the kept "
        f"rounds: {loads}; rounds were redone above {st['max_background']} cores.",
    ]
    busy = [r["workload"] for r in result["workloads"]
            if r["load"]["background_cores_median"] > 0.25]
    if busy or roof["load"]["background_cores_median"] > 0.25:
        parts.append("**Warning: other processes kept the machine busy during "
                     f"{', '.join(busy) or 'the roofline'}; these numbers are not reliable.**")
    parts.append(f"Command: `{result['command']}`")
    return "\n\n".join(parts) + "\n"


def write_json(result: dict, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(result, fh, indent=1)
        fh.write("\n")
    os.replace(tmp, path)


BEGIN_MARK = "<!-- bench:begin (generated by python -m bench --update-docs) -->"
END_MARK = "<!-- bench:end -->"


def splice_into_doc(doc_path: str, section: str) -> None:
    """Replace the text between the bench markers of ``doc_path`` with ``section``."""
    with open(doc_path) as fh:
        text = fh.read()
    start, end = text.find(BEGIN_MARK), text.find(END_MARK)
    if start < 0 or end < start:
        raise ValueError(f"{doc_path}: markers {BEGIN_MARK!r} ... {END_MARK!r} not found")
    text = text[:start + len(BEGIN_MARK)] + "\n" + section + text[end:]
    tmp = doc_path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, doc_path)
