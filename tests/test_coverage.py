"""DESIGN rule 3: every exported op, module, functional, initialiser and optimizer has a test row.

Each table module declares ``COVERED``, a set of the public names its rows exercise (derived from
the rows themselves, so a row must exist). This test collects those sets per test directory and
fails, listing the names, when something is exported without a row, e.g. a new op added to
``deepgrad.ops.__all__`` without a line in tests/ops/test_ops_table.py.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import sys
from pathlib import Path

import pytest

import deepgrad.nn as dnn
import deepgrad.nn.functional as F
import deepgrad.ops as ops
import deepgrad.optim as optim
from deepgrad.nn import init

TESTS = Path(__file__).resolve().parent


def _load(path: Path):
    """Import a test module by path (reusing pytest's import when it already happened)."""
    for mod in list(sys.modules.values()):
        if getattr(mod, "__file__", None) and Path(mod.__file__).resolve() == path:
            return mod
    spec = importlib.util.spec_from_file_location(f"_coverage_{path.parent.name}_{path.stem}",
                                                  path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


@functools.cache
def covered_in(directory: str) -> frozenset[str]:
    """Union of the ``COVERED`` sets of the test modules in ``tests/<directory>``."""
    names: set[str] = set()
    for path in sorted((TESTS / directory).glob("test_*.py")):
        if "COVERED" in path.read_text():
            names |= set(getattr(_load(path), "COVERED", set()))
    return frozenset(names)


def exported_ops() -> set[str]:
    return set(ops.__all__)


def exported_modules() -> set[str]:
    return {name for name in dnn.__all__
            if inspect.isclass(getattr(dnn, name)) and issubclass(getattr(dnn, name), dnn.Module)}


def exported_functional() -> set[str]:
    return set(F.__all__)


def exported_initialisers() -> set[str]:
    return {name for name, fn in inspect.getmembers(init, inspect.isfunction)
            if not name.startswith("_") and fn.__module__ == init.__name__}


def exported_optimizers() -> set[str]:
    return {name for name in dir(optim)
            if not name.startswith("_") and inspect.isclass(getattr(optim, name))
            and issubclass(getattr(optim, name), optim.Optimizer)}


def exported_models() -> set[str]:
    from deepgrad.models import list_models

    return set(list_models())


def missing(exported: set[str], covered: set[str]) -> list[str]:
    return sorted(exported - covered)


CATEGORIES = {
    "ops": (exported_ops, "ops"),
    "nn modules": (exported_modules, "nn"),
    "nn.functional": (exported_functional, "nn"),
    "nn.init": (exported_initialisers, "nn"),
    "optimizers": (exported_optimizers, "optim"),
    "models": (exported_models, "models"),
}


@pytest.mark.parametrize("category", list(CATEGORIES))
def test_every_export_has_a_test_row(category):
    exported, directory = CATEGORIES[category]
    names = exported()
    assert names, f"found no exported {category}: the enumeration is broken"
    gaps = missing(names, covered_in(directory))
    assert not gaps, (
        f"{category} exported without a test row in tests/{directory}/ (add a row to a table "
        f"and its name to that module's COVERED): {gaps}"
    )


def test_enumeration_sees_known_names():
    assert {"matmul", "getitem", "cross_entropy_logits"} <= exported_ops()
    assert {"Linear", "Sequential", "CrossEntropyLoss", "Module"} <= exported_modules()
    assert "Parameter" not in exported_modules()  # a Tensor, not a Module
    assert {"cross_entropy", "relu", "dropout"} <= exported_functional()
    assert {"kaiming_uniform_", "calculate_gain"} <= exported_initialisers()
    assert "SGD" in exported_optimizers()


def test_checker_flags_an_op_added_without_a_row():
    covered = covered_in("ops")
    assert "brand_new_op" in missing(exported_ops() | {"brand_new_op"}, covered)
    assert "matmul" not in missing(exported_ops(), covered)


def test_exported_ops_are_not_shadowed_by_submodules():
    """Importing ``deepgrad.ops.<x>`` binds the attribute ``x`` of the package to the submodule,
    so a submodule named like an exported op replaces that op for every later caller."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(ops.__path__):
        importlib.import_module(f"{ops.__name__}.{info.name}")
    shadowed = sorted(n for n in ops.__all__ if inspect.ismodule(getattr(ops, n)))
    assert not shadowed, f"deepgrad.ops exports replaced by submodules of the same name: {shadowed}"
