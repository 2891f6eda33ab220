"""``run_claims``: run claims, time them, and write each one's results and report."""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from deepgrad.lab.core import BUDGETS, ClaimOutcome, LabContext
from deepgrad.lab.registry import CLAIMS, get_claim

#: Seeds per budget when none are asked for.
DEFAULT_SEEDS = {"smoke": 1, "quick": 3, "full": 5}


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def check_verdict(verdict: dict, name: str) -> dict:
    """Validate a claim's verdict: ``holds`` a bool, ``detail`` a non-empty str, ``effect``."""
    if not isinstance(verdict, dict):
        raise TypeError(f"claim {name!r}: verdict must be a dict, got {type(verdict).__name__}")
    missing = {"holds", "effect", "detail"} - set(verdict)
    if missing:
        raise ValueError(f"claim {name!r}: verdict lacks {sorted(missing)}")
    if not isinstance(verdict["holds"], bool):
        raise TypeError(f"claim {name!r}: verdict['holds'] must be a bool, got "
                        f"{type(verdict['holds']).__name__}")
    if not isinstance(verdict["detail"], str) or not verdict["detail"].strip():
        raise ValueError(f"claim {name!r}: verdict['detail'] must be a non-empty str")
    return verdict


def resolve_names(names: str | Sequence[str]) -> list[str]:
    """``"all"`` -> every registered name; otherwise the names, checked.

    Raises:
        ValueError: for an unknown name (the known names are listed).
    """
    if isinstance(names, str):
        names = list(CLAIMS) if names == "all" else [names]
    names = list(names)
    for name in names:
        get_claim(name)
    return names


def run_claims(names: str | Sequence[str], budget: str = "quick",
               seeds: int | Sequence[int] | None = None,
               data_dir: str | Path | None = None, out_dir: str | Path = "lab-results",
               progress: Callable[[str], None] | None = _stderr, *, claims: dict | None = None
               ) -> list[dict]:
    """Run claims and write ``<out_dir>/<name>/{results.json, *.png, report.md, report.html}``.

    Args:
        names: a claim name, a list of them, or ``"all"`` (which also writes
            ``<out_dir>/index.html`` and ``index.md``).
        budget: ``"smoke"``, ``"quick"`` or ``"full"``.
        seeds: how many seeds (0..N-1), or the seeds themselves; default per budget
            (:data:`DEFAULT_SEEDS`).
        data_dir: the MNIST folder (``None``: the library's default data root).
        out_dir: where the claim folders go.
        progress: called with one-line status updates (default: print to stderr); ``None``
            for silence.
        claims: use this ``{name: Claim}`` dict instead of the registry (tests).

    Returns:
        One dict per claim: ``{"name", "out_dir", "results"}`` (``results`` is what
        ``results.json`` holds) or, when the claim raised, ``{"name", "out_dir", "error"}``.
        A claim that raises does not stop the others.
    """
    from deepgrad.lab import report

    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r}; choose one of {', '.join(BUDGETS)}")
    registry = CLAIMS if claims is None else claims
    want_index = names == "all"
    if isinstance(names, str):
        names = list(registry) if names == "all" else [names]
    for name in names:
        if name not in registry:
            raise ValueError(f"unknown claim {name!r}; available: {', '.join(registry)}")
    if seeds is None:
        seeds = DEFAULT_SEEDS[budget]
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {seeds}")
        seeds = list(range(seeds))
    seeds = [int(s) for s in seeds]
    say = progress or (lambda message: None)
    out_root = Path(out_dir)
    out_root.mkdir(parents=True, exist_ok=True)
    shared_cache: dict = {}
    results: list[dict] = []
    t_all = time.perf_counter()
    for i, name in enumerate(names, 1):
        claim = registry[name]
        claim_dir = out_root / name
        t0 = time.perf_counter()

        def claim_progress(message: str, _name=name, _t0=t0, _i=i) -> None:
            say(f"[{_i}/{len(names)} {_name} {time.perf_counter() - _t0:6.1f}s] {message}")

        ctx = LabContext(budget=budget, seeds=seeds, data_dir=data_dir, out_dir=claim_dir,
                         progress=claim_progress)
        ctx._cache = shared_cache  # the MNIST arrays are loaded once for all claims
        claim_progress(f"running {name} ({budget}, seeds {seeds})")
        try:
            outcome = claim.run(ctx)
            if not isinstance(outcome, ClaimOutcome):
                raise TypeError(f"claim {name!r}: run() must return a ClaimOutcome, got "
                                f"{type(outcome).__name__}")
            check_verdict(outcome.verdict, name)
        except (KeyboardInterrupt, FileNotFoundError):
            raise
        except Exception as exc:  # noqa: BLE001 -- one failing claim must not stop `all`
            elapsed = time.perf_counter() - t0
            tb = traceback.format_exc()
            claim_progress(f"FAILED after {elapsed:.1f}s: {type(exc).__name__}: {exc}")
            report.write_error(claim, ctx, exc, tb, elapsed)
            results.append({"name": name, "out_dir": claim_dir,
                            "error": f"{type(exc).__name__}: {exc}", "elapsed_s": elapsed})
            continue
        elapsed = time.perf_counter() - t0
        data = report.write_claim(claim, ctx, outcome, elapsed)
        word = "HOLDS" if outcome.verdict["holds"] else "DOES NOT HOLD"
        claim_progress(f"done in {elapsed:.1f}s: {word} -- {claim_dir / 'report.html'}")
        results.append({"name": name, "out_dir": claim_dir, "results": data,
                        "elapsed_s": elapsed})
    if want_index:
        index = report.write_index(out_root, results, budget, seeds,
                                   time.perf_counter() - t_all, registry)
        say(f"index: {index}")
    return results
