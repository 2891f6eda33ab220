"""Tests of atomic writes, weights .npz files and JSON summaries."""

from __future__ import annotations

import json

import numpy as np
import pytest

import deepgrad as dg
from deepgrad.models import get_model
from deepgrad.training import atomic_write, load_weights, save_weights, write_json


def test_weights_round_trip(tmp_path):
    dg.manual_seed(0)
    model = get_model("mlp", input_shape=(6,), num_classes=3, hidden=(4,))
    path = save_weights(model, tmp_path / "w.npz")
    with np.load(path) as archive:
        assert sorted(archive.files) == sorted(model.state_dict())
    dg.manual_seed(1)
    fresh = get_model("mlp", input_shape=(6,), num_classes=3, hidden=(4,))
    load_weights(fresh, path)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[key].data, value.data)
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]  # no temporary file left


def test_load_weights_errors_name_the_file(tmp_path):
    model = get_model("logreg", input_shape=(6,), num_classes=3)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_weights(model, tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="bad.npz: not a readable"):
        load_weights(model, bad)
    other = save_weights(get_model("logreg", input_shape=(5,), num_classes=3),
                         tmp_path / "other.npz")
    with pytest.raises(ValueError, match=r"other.npz: size mismatch for 1.weight"):
        load_weights(model, other)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "summary.json"
    write_json(path, {"a": 1})

    def broken(f):
        f.write(b"half of a file")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write(path, broken)
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_write_json_refuses_nan(tmp_path):
    with pytest.raises(ValueError):
        write_json(tmp_path / "x.json", {"loss": float("nan")})
    assert not (tmp_path / "x.json").exists()
