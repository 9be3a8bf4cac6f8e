"""``masked_batch_norm`` against ``nn.BatchNorm1d`` run on the valid rows alone."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from pcm3.models.masked_norm import masked_batch_norm


def norm_pair(momentum: float | None = 0.1) -> tuple[nn.BatchNorm1d, nn.BatchNorm1d]:
    torch.manual_seed(0)
    norm = nn.BatchNorm1d(3, momentum=momentum)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.uniform_(-1.0, 1.0)
    return norm, copy.deepcopy(norm)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_train_mode_equals_batch_norm_on_the_valid_rows(momentum):
    masked, reference = norm_pair(momentum)
    x = torch.randn(7, 3) * 2 + 1
    valid = torch.tensor([True, False, True, True, False, True, True])
    x[~valid] = 0.0  # padding: would pull the mean towards 0 in a plain BatchNorm
    xm, xr = x.clone().requires_grad_(True), x[valid].clone().requires_grad_(True)
    for _ in range(2):  # the second call checks the running-statistics update (momentum None: average)
        out = masked_batch_norm(masked, xm, valid)
        expected = reference(xr)
    torch.testing.assert_close(out[valid], expected)
    torch.testing.assert_close(masked.running_mean, reference.running_mean)
    torch.testing.assert_close(masked.running_var, reference.running_var)
    assert int(masked.num_batches_tracked) == int(reference.num_batches_tracked) == 2
    weights = torch.randn(int(valid.sum()), 3)
    (out[valid] * weights).sum().backward()
    (expected * weights).sum().backward()
    torch.testing.assert_close(xm.grad[valid], xr.grad)
    assert torch.all(xm.grad[~valid] == 0)  # padded rows neither shape the statistics nor get gradients


def test_hand_computed_statistics():
    norm = nn.BatchNorm1d(1, affine=False, momentum=0.5)
    x = torch.tensor([[1.0], [3.0], [0.0]])
    out = masked_batch_norm(norm, x, torch.tensor([True, True, False]))
    eps = norm.eps
    torch.testing.assert_close(out, torch.tensor([[-1.0], [1.0], [-2.0]]) / (1.0 + eps) ** 0.5)
    torch.testing.assert_close(norm.running_mean, torch.tensor([1.0]))  # 0.5 * 0 + 0.5 * 2
    torch.testing.assert_close(norm.running_var, torch.tensor([1.5]))  # 0.5 * 1 + 0.5 * 2 (unbiased)


def test_without_a_mask_or_in_eval_mode_it_is_the_module():
    masked, reference = norm_pair()
    x = torch.randn(5, 3)
    torch.testing.assert_close(masked_batch_norm(masked, x, None), reference(x))
    masked.eval()
    reference.eval()
    valid = torch.tensor([True, False, True, True, True])
    torch.testing.assert_close(masked_batch_norm(masked, x, valid), reference(x))


def test_one_valid_row_keeps_the_statistics_finite():
    norm, _ = norm_pair()
    out = masked_batch_norm(norm, torch.randn(3, 3), torch.tensor([True, False, False]))
    assert torch.isfinite(out).all() and torch.isfinite(norm.running_var).all()
    torch.testing.assert_close(norm.running_var, torch.full((3,), 0.9))  # 0.9 * 1 + 0.1 * 0


def test_low_precision_input_keeps_its_dtype():
    norm, reference = norm_pair()
    x = torch.randn(6, 3)
    valid = torch.ones(6, dtype=torch.bool)
    out = masked_batch_norm(norm, x.to(torch.bfloat16), valid)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), reference(x.to(torch.bfloat16).float()), atol=3e-2, rtol=3e-2)


def test_a_masked_call_after_a_plain_call_keeps_the_first_backward_valid():
    """Two passes of one encoder in a step (e.g. the views, then the clips): the plain call saved
    the running buffers for its backward; the masked call's update must not invalidate them."""
    norm, _ = norm_pair()
    x = torch.randn(6, 3, requires_grad=True)
    first = norm(x)
    second = masked_batch_norm(norm, x * 2, torch.tensor([True, True, True, False, True, True]))
    (first.sum() + second.square().sum()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
