"""Search backends: seeded random search (built in) and Optuna's TPE (an optional extra).

:func:`run_search` runs either: random search over a :class:`~deepgrad.search.SearchSpace`,
optionally followed by a second round in the space narrowed around the best trials; or an
Optuna study (TPE sampler, median pruner) whose storage may be shared by many workers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from deepgrad.search.space import PARAMS, SearchSpace, best_trials, narrow
from deepgrad.search.trial import RESULT_KEYS, SearchData, run_trial

BACKENDS = ("random", "optuna")
DEFAULT_STUDY_NAME = "deepgrad-search"


class OptunaUnavailable(ImportError):
    """``--backend optuna`` without Optuna installed."""


class StudyError(ValueError):
    """The Optuna study cannot be created or loaded (a bad storage URL, an unreachable
    database, a study with another direction)."""


def import_optuna():
    """Import Optuna, or raise :class:`OptunaUnavailable` saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise OptunaUnavailable("the optuna backend needs Optuna, which is not installed: "
                                "pip install optuna (or use --backend random)") from None
    return optuna


@dataclass
class SearchResult:
    """Every trial's record (see :func:`~deepgrad.search.run_trial`, plus ``trial`` and
    ``round``) and the space searched in each round (``spaces[0]`` is round 1)."""

    trials: list[dict]
    spaces: list[SearchSpace] = field(default_factory=list)


def random_search(space: SearchSpace, data: SearchData, n_trials: int, epochs: int,
                  seed: int = 0, round: int = 1, first_trial: int = 0,
                  log: Callable[[dict], object] | None = None) -> list[dict]:
    """Draw ``n_trials`` hyperparameter sets from ``space`` and train each.

    The draws come from ``np.random.default_rng([seed, round])``; trial ``i`` (numbered from
    ``first_trial``) trains with seed ``seed + i``. The same arguments give the same records
    (up to ``seconds``).

    Args:
        space: where to draw from.
        data: training and validation sets.
        n_trials: number of trials.
        epochs: training epochs per trial.
        seed: seed of the draws and the trials.
        round: the round number recorded (and part of the draws' seed).
        first_trial: number of the first trial.
        log: called with each record as it completes.

    Returns:
        The records, in trial order, each with ``trial`` and ``round`` first.
    """
    rng = np.random.default_rng([int(seed), int(round)])
    records = []
    for i in range(first_trial, first_trial + n_trials):
        params = space.sample(rng)
        record = {"trial": i, "round": round, **run_trial(params, data, epochs, seed + i)}
        records.append(record)
        if log is not None:
            log(record)
    return records


def _suggest(trial, space: SearchSpace) -> dict:
    """Optuna's suggestions for every hyperparameter, in :data:`PARAMS` order."""
    wd = space.weight_decay
    return {
        "optimizer": trial.suggest_categorical("optimizer", list(space.optimizers)),
        "lr": trial.suggest_float("lr", space.lr[0], space.lr[1], log=True),
        "batch_size": trial.suggest_categorical("batch_size", list(space.batch_sizes)),
        "weight_decay": 0.0 if wd[1] == 0 else trial.suggest_float("weight_decay", wd[0],
                                                                   wd[1], log=True),
        "depth": trial.suggest_categorical("depth", list(space.depths)),
        "width": trial.suggest_categorical("width", list(space.widths)),
        "dropout": trial.suggest_float("dropout", space.dropout[0], space.dropout[1]),
    }


def _study_records(optuna, study) -> list[dict]:
    """One record per finished trial of the study (all workers'), in trial order."""
    states = optuna.trial.TrialState
    records = []
    for t in study.get_trials(deepcopy=False):
        if t.state not in (states.COMPLETE, states.PRUNED, states.FAIL):
            continue  # still running in another worker, or waiting
        attrs = t.user_attrs
        record = {"trial": t.number, "round": 1}
        record.update({k: t.params.get(k, 0.0 if k == "weight_decay" else None)
                       for k in PARAMS})
        record.update({k: attrs.get(k) for k in RESULT_KEYS})
        if t.state == states.PRUNED:
            steps = sorted(t.intermediate_values)
            record.update(status="pruned", epochs=len(steps), val_acc=(
                t.intermediate_values[steps[-1]] if steps else None))
        elif t.state == states.FAIL:
            record["status"] = attrs.get("status", "failed")
        records.append(record)
    return records


def optuna_search(space: SearchSpace, data: SearchData, n_trials: int, epochs: int,
                  seed: int = 0, storage: str | None = None,
                  study_name: str = DEFAULT_STUDY_NAME,
                  log: Callable[[dict], object] | None = None) -> list[dict]:
    """Run ``n_trials`` trials of an Optuna study (TPE sampler, maximising val accuracy).

    With a database ``storage`` (any URL Optuna accepts, e.g. ``sqlite:///run/study.db`` or
    ``postgresql://...``) the study is created or loaded by name, so several workers, each with
    its own ``seed``, can add trials to one study. Trials report their validation accuracy
    after every epoch and Optuna's default median pruner may stop poor ones early (status
    ``"pruned"``). A diverged trial is reported to Optuna as accuracy 0 (so TPE learns to avoid
    the region) and kept with status ``"diverged"``.

    Returns:
        The records of all finished trials of the study, this worker's and others'.

    Raises:
        OptunaUnavailable: when Optuna is not installed.
        StudyError: when the study cannot be created or loaded from ``storage``.
    """
    optuna = import_optuna()
    try:
        study = optuna.create_study(study_name=study_name, storage=storage,
                                    direction="maximize", load_if_exists=True,
                                    sampler=optuna.samplers.TPESampler(seed=seed))
    except Exception as exc:  # NOTE: storages raise many types (SQLAlchemy's, ValueError)
        raise StudyError(f"cannot open the Optuna study {study_name!r} in storage "
                         f"{storage!r}: {type(exc).__name__}: {exc}") from None

    def objective(trial) -> float:
        params = _suggest(trial, space)
        trial_seed = seed + trial.number
        trial.set_user_attr("seed", trial_seed)

        def on_epoch(epoch: int, record: dict) -> None:
            if record["val_acc"] is None:
                return
            trial.report(record["val_acc"], epoch)
            # NOTE: never prune after the last epoch: the trial is complete by then.
            if epoch < epochs and trial.should_prune():
                raise optuna.TrialPruned()

        record = run_trial(params, data, epochs, trial_seed, on_epoch=on_epoch)
        for key in RESULT_KEYS:
            trial.set_user_attr(key, record[key])
        if log is not None:
            log({"trial": trial.number, "round": 1, **record})
        return record["val_acc"] if record["status"] == "ok" else 0.0

    study.optimize(objective, n_trials=n_trials)
    return _study_records(optuna, study)


def run_search(space: SearchSpace, data: SearchData, trials: int, epochs: int, seed: int = 0,
               backend: str = "random", narrow_rounds: int = 0, top: float | int = 0.25,
               storage: str | None = None, study_name: str = DEFAULT_STUDY_NAME,
               log: Callable[[dict], object] | None = None,
               log_space: Callable[[int, SearchSpace], object] | None = None) -> SearchResult:
    """Search ``space`` with ``backend``; see :func:`random_search` and :func:`optuna_search`.

    Args:
        space: the (broad) space of round 1.
        data: training and validation sets.
        trials: trials per round.
        epochs: training epochs per trial.
        seed: seed of the search.
        backend: ``"random"`` or ``"optuna"``.
        narrow_rounds: random search only: this many more rounds, each in the space
            :func:`~deepgrad.search.narrow`-ed around the ``top`` trials so far.
        top: which trials count as best for narrowing.
        storage, study_name: Optuna's storage URL (None: in memory) and study name.
        log: called with each record as it completes.
        log_space: called as ``log_space(round, space)`` before each round.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if backend == "optuna":
        if narrow_rounds:
            raise ValueError("narrowing applies to the random backend; TPE narrows by itself")
        if log_space is not None:
            log_space(1, space)
        return SearchResult(optuna_search(space, data, trials, epochs, seed, storage,
                                          study_name, log), [space])
    best_trials([], top)  # refuse a bad `top` before any training
    records: list[dict] = []
    spaces: list[SearchSpace] = []
    for r in range(1, narrow_rounds + 2):
        if r > 1:
            try:
                space = narrow(space, records, top)
            except ValueError as exc:
                raise RuntimeError(f"round {r}: {exc} (every trial so far diverged; try a "
                                   "lower learning-rate range)") from None
        spaces.append(space)
        if log_space is not None:
            log_space(r, space)
        records += random_search(space, data, trials, epochs, seed, round=r,
                                 first_trial=len(records), log=log)
    return SearchResult(records, spaces)


def sort_trials(records: Sequence[dict]) -> list[dict]:
    """Completed trials by validation accuracy (best first), then pruned, then the rest."""
    rank = {"ok": 0, "pruned": 1}

    def key(r: dict):
        acc = r.get("val_acc")
        return (rank.get(r.get("status"), 2), -(acc if acc is not None else -1.0), r["trial"])
    return sorted(records, key=key)
