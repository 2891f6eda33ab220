"""The smoke-budget check every lab claim gets (tests/lab/test_claims_a.py and _b.py)."""

from __future__ import annotations

import time

from matplotlib.figure import Figure

from deepgrad.lab import ClaimOutcome, LabContext, get_claim

SMOKE_SECONDS = 20  # generous on a loaded 2-core machine; typically 1-4 s each


def check_claim_at_smoke(name: str, mnist_dir, tmp_path):
    """Run claim ``name`` at the smoke budget with seed 0 on real MNIST: it finishes in
    seconds and returns a well-formed outcome (the checks every claim meets; the test files
    add those of their own claims' shape). Returns (claim, outcome, progress lines)."""
    claim = get_claim(name)
    assert claim.name == name and claim.title and claim.statement and claim.references
    lines = []
    ctx = LabContext("smoke", [0], mnist_dir, tmp_path, progress=lines.append)
    t0 = time.perf_counter()
    outcome = claim.run(ctx)
    elapsed = time.perf_counter() - t0
    assert elapsed < SMOKE_SECONDS, f"{name} smoke took {elapsed:.1f}s"
    assert isinstance(outcome, ClaimOutcome)
    assert outcome.settings["budget"] == "smoke" and outcome.settings["seeds"] == [0]
    v = outcome.verdict
    assert isinstance(v["holds"], bool) and isinstance(v["detail"], str) and v["detail"].strip()
    assert "effect" in v
    assert outcome.runs
    for run in outcome.runs:
        assert set(run) >= {"variant", "seed", "curves", "final"}
        assert run["seed"] == 0
    assert outcome.figures and all(isinstance(f, Figure) for f in outcome.figures.values())
    assert all(n.endswith(".png") for n in outcome.figures)
    return claim, outcome, lines
