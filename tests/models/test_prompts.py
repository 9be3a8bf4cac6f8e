"""Task prompts (random-offset addition) and per-view input prompts."""

from __future__ import annotations

import math

import pytest
import torch

from pcm3.errors import ConfigError
from pcm3.models import InputPrompts, TaskPrompt, add_at_offset, random_offsets


def reference_add(feature, prompt, offsets):
    """Official slicing, one sample at a time: f[s:s+L] += P[:L]; f[D/2+s:...] += P[L:]."""
    out = feature.clone()
    length, half = prompt.numel() // 2, feature.shape[-1] // 2
    p = prompt.reshape(-1)
    for i, s in enumerate(offsets.tolist()):
        out[i, ..., s:s + length] = out[i, ..., s:s + length] + p[:length]
        out[i, ..., half + s:half + s + length] = out[i, ..., half + s:half + s + length] + p[length:]
    return out


@pytest.mark.parametrize("frames", [None, 3])
def test_add_at_offset_matches_reference_with_gradients(frames):
    torch.manual_seed(0)
    n, half, length = 5, 10, 3
    shape = (n, 2 * half) if frames is None else (n, frames, 2 * half)
    feature = torch.randn(shape, requires_grad=True)
    prompt = torch.randn(1, 2 * length, requires_grad=True)
    offsets = torch.tensor([0, 7, 3, 7, 5])  # 7 = half - length: last valid offset
    upstream = torch.randn(shape)

    out = add_at_offset(feature, prompt, offsets)
    (out * upstream).sum().backward()
    got = (out.detach(), feature.grad.clone(), prompt.grad.clone())
    feature.grad, prompt.grad = None, None
    expected = reference_add(feature, prompt, offsets)
    (expected * upstream).sum().backward()
    torch.testing.assert_close(got[0], expected.detach())
    torch.testing.assert_close(got[1], feature.grad)
    torch.testing.assert_close(got[2], prompt.grad)


def test_shared_offset_and_task_prompt_module():
    torch.manual_seed(0)
    module = TaskPrompt(dim_half=8, length=2)
    feature = torch.randn(3, 4, 16)
    shared = add_at_offset(feature, module.prompt, torch.tensor(5))
    torch.testing.assert_close(shared, reference_add(feature, module.prompt, torch.tensor([5] * 3)))
    torch.testing.assert_close(module(feature, torch.full((3,), 5)), shared)
    with pytest.raises(ConfigError, match="features of width 16"):
        module(torch.randn(3, 18), torch.zeros(3, dtype=torch.long))


def test_add_at_offset_rejects_bad_offsets_and_shapes():
    feature, prompt = torch.zeros(2, 20), torch.zeros(1, 6)
    with pytest.raises(ConfigError, match=r"prompt offset 8 is outside 0\.\.7"):
        add_at_offset(feature, prompt, torch.tensor([1, 8]))
    with pytest.raises(ConfigError, match="prompt offset -1"):
        add_at_offset(feature, prompt, torch.tensor([-1, 0]))
    with pytest.raises(ConfigError, match="integer tensor of shape"):
        add_at_offset(feature, prompt, torch.tensor([1.0, 2.0]))
    with pytest.raises(ConfigError, match="integer tensor of shape"):
        add_at_offset(feature, prompt, torch.tensor([1, 2, 3]))
    with pytest.raises(ConfigError, match="feature must be"):
        add_at_offset(torch.zeros(2, 21), prompt, torch.tensor([0, 0]))


def test_random_offsets_range_and_reproducibility():
    half, length = 10, 4  # official randint(0, half - length - 1): 0..5 inclusive
    draws = random_offsets(3000, half, length, torch.Generator().manual_seed(3), "cpu")
    assert draws.dtype == torch.long and draws.shape == (3000,)
    assert set(draws.tolist()) == set(range(half - length))
    again = random_offsets(3000, half, length, torch.Generator().manual_seed(3))
    assert torch.equal(draws, again)
    module = TaskPrompt(dim_half=half, length=length)
    assert torch.equal(module.random_offsets(3000, torch.Generator().manual_seed(3)), draws)
    with pytest.raises(ConfigError, match="prompt length 10"):
        random_offsets(2, 10, 10, torch.Generator())


def test_xavier_bounds():
    prompt = TaskPrompt(dim_half=1024, length=128).prompt
    bound = math.sqrt(6 / (1 + 256))  # 0.153, as in the reference notes
    assert prompt.shape == (1, 256)
    assert prompt.abs().max() <= bound and prompt.abs().max() > 0.9 * bound
    prompts = InputPrompts(150)
    bound = math.sqrt(3 / 150)  # = sqrt(6 / 300) = 0.141
    for name in ("base", "mask", "recons", "mix"):
        p = prompts[name]
        assert p.shape == (1, 150) and p.requires_grad
        assert p.abs().max() <= bound and p.abs().max() > 0.8 * bound
    assert len(list(prompts.parameters())) == 4
    shaped = InputPrompts((3, 50))  # any backbone's input_prompt_shape; the same bound for F = 150
    assert shaped["base"].shape == (1, 3, 50) and shaped.shape == (3, 50)
    assert shaped["base"].abs().max() <= bound and shaped["base"].abs().max() > 0.8 * bound


def test_input_prompts_names():
    prompts = InputPrompts(6, names=("a", "b"))
    assert prompts.names == ("a", "b") and prompts("b") is prompts["b"]
    with pytest.raises(ConfigError, match="no input prompt 'c'; known: a, b"):
        prompts["c"]
    with pytest.raises(ConfigError, match="unique"):
        InputPrompts(6, names=("a", "a"))
