"""The lab: claims of deep learning lore, each an experiment over seeds with plots and a
verdict computed from the runs.

    from deepgrad.lab import list_claims, run_claims
    run_claims("batchnorm", budget="quick", seeds=3, out_dir="lab-results")

or from the shell: ``deepgrad lab list``, ``deepgrad lab run batchnorm --budget quick``.
"""

from deepgrad.lab.core import BUDGETS, Claim, ClaimOutcome, LabContext
from deepgrad.lab.data import LabData
from deepgrad.lab.registry import CLAIMS, get_claim, list_claims
from deepgrad.lab.runner import run_claims

__all__ = ["BUDGETS", "CLAIMS", "Claim", "ClaimOutcome", "LabContext", "LabData", "get_claim",
           "list_claims", "run_claims"]
