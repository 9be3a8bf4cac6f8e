"""Every registered method on its default backbone (tiny options): a few training steps give
finite named losses and a gradient on every encoder parameter; a run killed after a checkpoint
and resumed ends with exactly the weights, queues and EMA copies of an uninterrupted run."""

from __future__ import annotations

import math

import pytest
import torch

from pcm3.config import load_config
from pcm3.data import open_store
from pcm3.engine.config import PretrainConfig
from pcm3.engine.trainer import Trainer
from pcm3.methods import build_method
from pcm3.methods.registry import known_methods

from .every_method import tiny_method


class Interrupt(Exception):
    pass


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: faster on one thread


def _trainer(method, store_path, run_dir, *overrides, on_step=None):
    cfg = load_config(PretrainConfig, None, [*tiny_method(method), f"data={store_path}", *overrides])
    store = open_store(store_path).split("xsub/train")
    torch.manual_seed(cfg.seed)
    return Trainer(cfg, build_method(cfg, store.layout, 3, 2), store, run_dir, torch.device("cpu"),
                   on_step=on_step)


@pytest.mark.parametrize("method", known_methods())
def test_steps_train_every_encoder_weight_and_resume_exactly(method, tiny_store_path, tmp_path):
    seen: list[dict[str, float]] = []
    full = _trainer(method, tiny_store_path, tmp_path / "full", "max_steps=3",
                    on_step=lambda step, values: seen.append(values))
    full.fit()
    assert len(seen) == 3 and all("loss" in v and all(map(math.isfinite, v.values())) for v in seen)
    for name, param in full.method.online_encoder.named_parameters():
        grad = param.grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name

    def crash(step, _values):
        if step == 2:
            raise Interrupt

    broken = _trainer(method, tiny_store_path, tmp_path / "cut", "max_steps=3", "checkpoint_every=1",
                      on_step=crash)
    with pytest.raises(Interrupt):
        broken.fit()
    resumed = _trainer(method, tiny_store_path, tmp_path / "cut", "max_steps=3")
    assert resumed.resume() and resumed.step == 2
    resumed.fit()
    a, b = full.method.state_dict(), resumed.method.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=f"{method}: {key}")
