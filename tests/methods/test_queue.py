"""Tests for pcm3.methods.queue.MoCoQueue against a python-list ring buffer."""

from __future__ import annotations

import pytest
import torch

from pcm3.errors import ConfigError, Pcm3Error
from pcm3.methods.queue import MoCoQueue


class ListRing:
    """Obviously-correct reference: write keys one by one, wrapping at the end."""

    def __init__(self, rows: list[list[float]]) -> None:
        self.rows = [list(r) for r in rows]
        self.ptr = 0

    def enqueue(self, keys: list[list[float]]) -> None:
        for key in keys:
            self.rows[self.ptr] = list(key)
            self.ptr = (self.ptr + 1) % len(self.rows)


def test_init_rows_are_unit_length_and_pointer_zero():
    queue = MoCoQueue(size=16, dim=5, generator=torch.Generator().manual_seed(0))
    assert queue.keys.shape == (16, 5) and queue.keys.dtype == torch.float32
    assert queue.size == 16 and queue.dim == 5
    norms = [sum(float(v) ** 2 for v in row) ** 0.5 for row in queue.keys]
    assert norms == pytest.approx([1.0] * 16, abs=1e-6)
    assert int(queue.ptr) == 0
    assert queue.keys.std() > 0.1  # random, not constant


def test_generator_makes_init_reproducible():
    a = MoCoQueue(8, 3, generator=torch.Generator().manual_seed(1))
    b = MoCoQueue(8, 3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a.keys, b.keys, rtol=0, atol=0)


@pytest.mark.parametrize("batches", [[3, 3, 3, 3], [4, 4, 4], [5, 1, 7, 2], [10], [25, 3]])
def test_enqueue_matches_list_reference(batches):
    size, dim = 10, 2
    queue = MoCoQueue(size, dim, generator=torch.Generator().manual_seed(2))
    reference = ListRing(queue.keys.tolist())
    counter = 0
    for b in batches:
        keys = torch.arange(counter, counter + b * dim, dtype=torch.float32).reshape(b, dim)
        counter += b * dim
        queue.enqueue(keys)
        reference.enqueue(keys.tolist())
        assert queue.keys.tolist() == reference.rows
        assert int(queue.ptr) == reference.ptr


def test_snapshot_is_pre_update_and_safe_for_backward():
    queue = MoCoQueue(6, 3, generator=torch.Generator().manual_seed(3))
    before = queue.keys.clone()
    snap = queue.snapshot()
    assert not snap.requires_grad
    q = torch.randn(2, 3, requires_grad=True)
    loss = (q @ snap.T).sum()
    queue.enqueue(torch.ones(4, 3))
    torch.testing.assert_close(snap, before, rtol=0, atol=0)  # not changed by the enqueue
    assert not torch.equal(queue.keys, before)
    loss.backward()  # no "modified by an inplace operation" error
    torch.testing.assert_close(q.grad, before.sum(0).expand(2, 3))


def test_state_dict_round_trip():
    queue = MoCoQueue(7, 4, generator=torch.Generator().manual_seed(4))
    queue.enqueue(torch.randn(5, 4))
    state = queue.state_dict()
    assert set(state) == {"keys", "ptr"}
    restored = MoCoQueue(7, 4, generator=torch.Generator().manual_seed(99))
    restored.load_state_dict(state)
    torch.testing.assert_close(restored.keys, queue.keys, rtol=0, atol=0)
    assert int(restored.ptr) == 5
    keys = torch.randn(3, 4)
    queue.enqueue(keys)
    restored.enqueue(keys)
    torch.testing.assert_close(restored.keys, queue.keys, rtol=0, atol=0)
    assert int(restored.ptr) == int(queue.ptr) == 1


def test_enqueue_casts_low_precision_keys():
    queue = MoCoQueue(4, 2)
    queue.enqueue(torch.tensor([[0.5, -0.25]], dtype=torch.bfloat16))
    assert queue.keys.dtype == torch.float32
    assert queue.keys[0].tolist() == [0.5, -0.25]


def test_bad_arguments_raise():
    with pytest.raises(ConfigError, match="size"):
        MoCoQueue(0, 4)
    queue = MoCoQueue(4, 3)
    with pytest.raises(Pcm3Error, match=r"\(B, 3\)"):
        queue.enqueue(torch.zeros(2, 4))
