"""Background prefetch: same items in the same order, read ahead, errors and early exits."""

import threading

import pytest
import torch

from pcm3.config import load_config
from pcm3.data import open_store
from pcm3.data.batches import ClipBatches
from pcm3.engine.config import PretrainConfig
from pcm3.engine.prefetch import prefetched
from pcm3.engine.trainer import Trainer
from pcm3.methods import build_method

from ..conftest import TINY_MODEL


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_same_items_in_the_same_order(depth):
    assert list(prefetched(iter(range(10)), depth)) == list(range(10))
    assert list(prefetched([], depth)) == []


def test_reads_ahead_while_the_consumer_works():
    read = []
    second_read = threading.Event()

    def source():
        for i in range(3):
            read.append(i)
            if i == 1:
                second_read.set()
            yield i

    items = prefetched(source(), 1)
    assert next(items) == 0
    # the consumer asked for nothing more, yet the next item is being read
    assert second_read.wait(timeout=10)
    assert list(items) == [1, 2]


def test_a_read_error_is_raised_at_its_item():
    def source():
        yield 1
        raise ValueError("bad batch 2")

    got = []
    with pytest.raises(ValueError, match="bad batch 2"):
        for item in prefetched(source(), 2):
            got.append(item)
    assert got == [1]


def test_leaving_early_stops_the_reader():
    def endless():
        i = 0
        while True:
            yield i
            i += 1

    items = prefetched(endless(), 2)
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()
    assert not any(t.name == "pcm3-prefetch" and t.is_alive() for t in threading.enumerate())


def test_store_batches_are_identical_with_and_without_prefetch(tiny_store_path):
    store = open_store(tiny_store_path).split("xsub/train")
    batches = ClipBatches(store, 5, seed=3, drop_last=False)
    for epoch in range(2):
        plain = list(batches.epoch(epoch, skip=1))
        ahead = list(prefetched(batches.epoch(epoch, skip=1), 2))
        assert len(plain) == len(ahead) == len(batches) - 1
        for a, b in zip(plain, ahead, strict=True):
            for name in ("x", "lengths", "index"):
                assert torch.equal(getattr(a, name), getattr(b, name)), name


def _train(store_path, run_dir, workers):
    cfg = load_config(PretrainConfig, None, [*TINY_MODEL, "max_steps=3", f"num_workers={workers}"])
    store = open_store(store_path).split("xsub/train")
    torch.manual_seed(cfg.seed)
    trainer = Trainer(cfg, build_method(cfg, store.layout, 3, 2), store, run_dir, torch.device("cpu"))
    return trainer.fit(), trainer.method.state_dict()


def test_training_is_identical_with_and_without_prefetch(tiny_store_path, tmp_path):
    # 16 clips, batch 8: 2 steps per epoch; 3 steps cross an epoch boundary and stop mid-epoch
    summary0, weights0 = _train(tiny_store_path, tmp_path / "plain", 0)
    summary2, weights2 = _train(tiny_store_path, tmp_path / "ahead", 2)
    assert summary0["step"] == summary2["step"] == 3
    assert summary0["final_losses"] == summary2["final_losses"]
    for key in weights0:
        torch.testing.assert_close(weights0[key], weights2[key], rtol=0, atol=0, msg=key)
