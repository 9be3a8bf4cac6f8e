"""``pcm3 quickstart``: data, pre-training and the benchmark in one command (tiny settings)."""

from __future__ import annotations

import json

import pytest
import yaml

from pcm3.cli import main
from pcm3.config import load_config
from pcm3.data.synthetic import synthesize_store
from pcm3.tasks.bench import BenchConfig

from ..conftest import TINY_MODEL


@pytest.fixture(scope="module")
def tiny_builtin(tmp_path_factory):
    path = tmp_path_factory.mktemp("quickstart") / "builtin"
    synthesize_store(path, seed=0, size="tiny")
    return path


def test_shipped_quickstart_config_runs_every_task_the_builtin_data_supports():
    cfg = load_config(BenchConfig, "configs/quickstart.yaml", [])
    assert cfg.data == "synthetic" and cfg.references == ["random-init", "raw"]
    assert {"linear", "knn", "occlusion", "detection", "semi", "fewshot"} <= set(cfg.tasks)
    assert "quick" in cfg.pretrain.config
    assert 0 < cfg.pretrain.overrides["time_budget_minutes"] < 10  # the main job fits 10 min


def test_the_budget_line_says_when_the_run_was_shortened(tmp_path):
    from pcm3.commands.quickstart import pretraining_budget_line

    path = tmp_path / "provenance.json"
    assert pretraining_budget_line(path) is None
    budget = {"minutes": 6, "step_seconds": 0.24, "steps_per_epoch": 13, "configured_epochs": 160,
              "epochs": 115}
    path.write_text(json.dumps({"pretrain": {"summary": {"time_budget": budget}}}))
    line = pretraining_budget_line(path)
    assert "115 of 160 epochs" in line and "6-minute budget" in line and "shorter run" in line
    path.write_text(json.dumps({"pretrain": {"summary": {"time_budget": {**budget, "epochs": 160}}}}))
    assert "shorter run" not in pretraining_budget_line(path)
    path.write_text(json.dumps({"pretrain": {"summary": {"step": 3}}}))
    assert pretraining_budget_line(path) is None


def test_quickstart_runs_pretraining_and_the_benchmark(tiny_builtin, tmp_path, capsys):
    model = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in TINY_MODEL)}
    model.update(epochs=1, knn_every=0)
    config = {
        "data": str(tiny_builtin), "device": "cpu", "pictures": True,
        "pretrain": {"config": None, "overrides": model},
        "tasks": {"knn": {}, "linear": {"epochs": 2},
                  "detection": {"epochs": 2, "unseen_test_classes": "ignore"}},
    }
    path = tmp_path / "qs.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    code = main(["quickstart", "--config", str(path), "--out", str(out)])
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    assert "[3/3]" in stdout and "| knn" in stdout and "map@0.5" in stdout
    rows = json.loads((out / "results.json").read_text())
    assert {r["encoder"] for r in rows} == {"pcm3", "random-init", "raw"}
    assert {r["task"] for r in rows} == {"knn", "linear", "detection"}
    assert (out / "sample_0.gif").exists() and (out / "pictures").is_dir()


def test_missing_config_is_a_clear_error(tmp_path, capsys):
    code = main(["quickstart", "--config", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "r")])
    assert code == 2 and "run the quickstart from the pcm3 checkout" in capsys.readouterr().err
