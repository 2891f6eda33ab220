"""Hyperparameter search: random search (seeded, with narrowing) and Optuna's TPE (optional).

A search trains many small MLPs with the library's fit loop on a (limited) training set, each
with hyperparameters drawn from a :class:`SearchSpace` (learning rate, batch size, weight
decay, depth and width, dropout, optimizer), scores each on a validation split, and writes
``trials.csv``, ``results.md`` and ``search.png``. The command line is ``deepgrad search``.

Example::

    data = SearchData.from_arrays(x, y, val_split=0.2, seed=0)
    result = run_search(SearchSpace(), data, trials=20, epochs=2, narrow_rounds=1)
    write_reports("runs/search", result.trials, result.spaces, {"dataset": "mnist"})
"""

from deepgrad.search.backends import (
    BACKENDS,
    OptunaUnavailable,
    SearchResult,
    StudyError,
    import_optuna,
    optuna_search,
    random_search,
    run_search,
    sort_trials,
)
from deepgrad.search.report import plot_search, results_markdown, trials_csv, write_reports
from deepgrad.search.space import (
    OPTIMIZERS,
    PARAMS,
    SearchSpace,
    best_trials,
    build_optimizer,
    narrow,
)
from deepgrad.search.trial import SearchData, run_trial

__all__ = [
    "BACKENDS", "OPTIMIZERS", "PARAMS", "OptunaUnavailable", "SearchData", "SearchResult",
    "SearchSpace", "StudyError", "best_trials", "build_optimizer", "import_optuna", "narrow",
    "optuna_search", "plot_search", "random_search", "results_markdown", "run_search",
    "run_trial", "sort_trials", "trials_csv", "write_reports",
]
