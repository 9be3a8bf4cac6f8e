"""The linear task's protocol presets (``protocol=cmd``) and the labelled best-over-evaluations
number."""

from __future__ import annotations

import re

import numpy as np
import pytest

from pcm3.config import from_dict, to_dict
from pcm3.errors import ConfigError
from pcm3.tasks.base import raw_encoder
from pcm3.tasks.bench_table import numbers_note, task_rows
from pcm3.tasks.linear import LinearConfig

from ..conftest import HANDS8
from .test_linear import _run, separable_store


def test_presets_fill_what_is_unset():
    default = from_dict(LinearConfig, {})
    assert (default.augment, default.standardize, default.best_over_evals) == (False, True, False)
    cmd = from_dict(LinearConfig, {"protocol": "cmd"})
    assert (cmd.augment, cmd.standardize, cmd.best_over_evals, cmd.eval_every) == (True, False, True, 5)
    assert (cmd.lr, cmd.momentum, cmd.weight_decay, cmd.batch_size, cmd.epochs) == (0.1, 0.9, 0.0, 64, 80)
    assert (cmd.milestones, cmd.gamma, cmd.crop_ratio) == ([50, 70], 0.1, 0.95)
    assert tuple(cmd.crop_scale) == (0.5, 1.0)
    assert from_dict(LinearConfig, to_dict(cmd)) == cmd  # the resolved record reads back the same
    assert LinearConfig(protocol="cmd") == cmd
    mixed = from_dict(LinearConfig, {"protocol": "default", "augment": True, "standardize": False})
    assert (mixed.augment, mixed.standardize, mixed.best_over_evals) == (True, False, False)
    assert from_dict(LinearConfig, {"protocol": "cmd", "best_over_evals": False}).best_over_evals is False


@pytest.mark.parametrize(("override", "named"), [({"epochs": 10}, "epochs=10 (CMD: 80)"),
                                                 ({"standardize": True}, "standardize=True (CMD: False)"),
                                                 ({"crop_scale": [0.2, 1.0]}, "crop_scale=[0.2, 1.0]")])
def test_cmd_preset_refuses_conflicting_values(override, named):
    with pytest.raises(ConfigError, match=r"protocol=cmd .* fixes " + re.escape(named)):
        from_dict(LinearConfig, {"protocol": "cmd", **override})
    with pytest.raises(ConfigError, match="allowed values"):
        from_dict(LinearConfig, {"protocol": "linear-eval"})
    with pytest.raises(ConfigError, match="eval_every must be >= 1"):
        from_dict(LinearConfig, {"eval_every": 0})


def test_best_over_evals_is_the_best_of_the_periodic_heads(tmp_path):
    """Reference: the head after epoch e of a 12-epoch run is the final head of an e-epoch run
    (same seed, schedule and shuffling), so the best over epochs 4, 8 and 12 is the best of
    three shorter runs' final top-1. Random labels make the score move from epoch to epoch."""
    labels = [int(v) for v in np.random.default_rng(0).integers(0, 3, 18)]
    path = separable_store(tmp_path / "noisy", labels=labels)
    raw = raw_encoder(HANDS8, 3, 2, frames=16)
    full = _run(raw, path, seed=2, epochs=12, best_over_evals=True, eval_every=4)
    assert set(full) == {"top1", "top5", "top1_best_over_evals"}
    shorter = [_run(raw, path, seed=2, epochs=e)["top1"] for e in (4, 8, 12)]
    assert full["top1"] == shorter[-1] and max(shorter) > shorter[-1]  # the case is informative
    assert full["top1_best_over_evals"] == max(shorter)
    assert set(_run(raw, path, epochs=2)) == {"top1", "top5"}  # not unless asked


def test_cmd_protocol_is_the_augmented_raw_feature_protocol(tiny_store_path):
    raw = raw_encoder(HANDS8, 3, 2, frames=16)  # (frozen-encoder checks with crops: test_linear.py)
    cmd = _run(raw, tiny_store_path, seed=1, protocol="cmd")
    same = _run(raw, tiny_store_path, seed=1, augment=True, standardize=False, best_over_evals=True)
    assert cmd == same and set(cmd) == {"top1", "top5", "top1_best_over_evals"}
    assert cmd["top1_best_over_evals"] >= cmd["top1"]


def test_tables_label_selected_numbers():
    plain = task_rows("pcm3", "linear", {"top1": 50.0, "top5": 90.0}, "xsub/val", 0, 1.0)
    assert numbers_note(plain) == "final-epoch numbers"
    picked = task_rows("pcm3", "linear", {"top1": 50.0, "top1_best_over_evals": 52.0}, "xsub/val", 0, 1.0)
    note = numbers_note(picked)
    assert "`*_best_over_evals` rows: the best of several evaluations on the test split" in note
