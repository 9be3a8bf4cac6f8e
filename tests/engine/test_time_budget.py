import json

import pytest
import torch

from pcm3.config import load_config
from pcm3.data import open_store
from pcm3.engine import trainer as trainer_module
from pcm3.engine.config import PretrainConfig
from pcm3.engine.time_budget import PROBE_STEPS, WARMUP_STEPS, epochs_within_budget
from pcm3.engine.trainer import Trainer
from pcm3.errors import ConfigError
from pcm3.methods import build_method

from ..conftest import TINY_MODEL


@pytest.mark.parametrize(("minutes", "step_s", "per_epoch", "configured", "expected"), [
    (1.0, 0.5, 10, 100, 12),   # 60 s / (0.5 s * 10) = 12 epochs
    (1.0, 0.5, 10, 5, 5),      # never more than configured
    (0.01, 0.5, 10, 5, 1),     # at least one epoch
    (2.0, 1.0, 7, 50, 17),     # floor(120 / 7)
])
def test_epochs_within_budget_matches_hand_arithmetic(minutes, step_s, per_epoch, configured, expected):
    decision = epochs_within_budget(minutes, step_s, per_epoch, configured)
    assert decision.epochs == expected and decision.configured_epochs == configured
    assert "s per step" in decision.describe()


class FakeClock:
    """perf_counter advanced by hand: each training step takes ``step_s`` seconds."""

    def __init__(self, step_s: float) -> None:
        self.now, self.step_s = 1000.0, step_s

    def perf_counter(self) -> float:
        return self.now

    def tick(self, *_args) -> None:
        self.now += self.step_s


def _trainer(store_path, run_dir, clock, *overrides):
    cfg = load_config(PretrainConfig, None, [*TINY_MODEL, f"data={store_path}", "batch_size=4",
                                             "epochs=40", "knn_every=0", *overrides])
    store = open_store(store_path).split("xsub/train")
    torch.manual_seed(cfg.seed)
    method = build_method(cfg, store.layout, 3, 2)
    return Trainer(cfg, method, store, run_dir, torch.device("cpu"), on_step=clock.tick)


def test_budget_keeps_the_epochs_that_fit_and_a_resume_keeps_the_decision(tiny_store_path, tmp_path,
                                                                          monkeypatch):
    clock = FakeClock(0.5)
    monkeypatch.setattr(trainer_module, "time", clock)
    probe = _trainer(tiny_store_path, tmp_path / "probe", clock)
    per_epoch = probe.steps_per_epoch
    want = -(-(WARMUP_STEPS + PROBE_STEPS + 1) // per_epoch) + 1  # epochs past the probe
    minutes = (want * per_epoch * 0.5 + 0.2) / 60
    run = _trainer(tiny_store_path, tmp_path / "run", clock, f"time_budget_minutes={minutes}")
    summary = run.fit()
    assert summary["step"] == want * per_epoch and summary["epochs"] == want
    assert summary["time_budget"]["epochs"] == want and summary["time_budget"]["configured_epochs"] == 40
    assert summary["time_budget"]["step_seconds"] == pytest.approx(0.5)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("time_budget" in r for r in rows)
    # a rerun from the last checkpoint keeps the decision instead of measuring again
    again = _trainer(tiny_store_path, tmp_path / "run", FakeClock(100.0), f"time_budget_minutes={minutes}")
    assert again.resume() and again.total_steps == want * per_epoch and again.budget is not None


def test_without_a_budget_the_configured_epochs_run(tiny_store_path, tmp_path, monkeypatch):
    clock = FakeClock(0.5)
    monkeypatch.setattr(trainer_module, "time", clock)
    run = _trainer(tiny_store_path, tmp_path / "run", clock, "epochs=2")
    summary = run.fit()
    assert summary["step"] == 2 * run.steps_per_epoch and "time_budget" not in summary


def test_a_non_positive_budget_is_refused():
    with pytest.raises(ConfigError, match="time_budget_minutes must be positive"):
        load_config(PretrainConfig, None, ["time_budget_minutes=0"])
