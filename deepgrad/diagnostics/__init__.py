"""Training diagnostics: per-layer activation and gradient statistics, findings, curves.

* :func:`inspect` runs one batch through a model with hooks and returns a :class:`Report`
  (per-layer mean/std, saturated and dead fractions, weight and back-propagated gradient
  norms, update ratios) with ``flags`` such as ``"layer 9 (Tanh): 87% saturated"``;
  ``report.table()``, ``report.to_dict()``, ``report.save_histograms(dir)``.
* :func:`diagnose_curves` reads under-/over-fitting off per-epoch training curves.
* :func:`build_diagnose_model` and :func:`run_diagnose` are what ``deepgrad diagnose`` runs.

References: Glorot & Bengio 2010; He et al. 2015; Ioffe & Szegedy 2015.
"""

from deepgrad.diagnostics.curves import CurveDiagnosis, diagnose_curves
from deepgrad.diagnostics.diagnose import (
    ACTIVATIONS,
    INITS,
    build_diagnose_model,
    init_weights,
    run_diagnose,
)
from deepgrad.diagnostics.flags import THRESHOLDS, compute_flags
from deepgrad.diagnostics.histograms import save_histograms
from deepgrad.diagnostics.inspection import DEFAULT_LR, inspect
from deepgrad.diagnostics.report import Report

__all__ = [
    "ACTIVATIONS", "DEFAULT_LR", "INITS", "THRESHOLDS", "CurveDiagnosis", "Report",
    "build_diagnose_model", "compute_flags", "diagnose_curves", "init_weights", "inspect",
    "run_diagnose", "save_histograms",
]
