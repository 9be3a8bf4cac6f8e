import pytest
import torch

from pcm3.config import load_config
from pcm3.engine.config import PretrainConfig
from pcm3.layouts import NTU25
from pcm3.methods import build_method

from ..conftest import HANDS8, TINY_MODEL

ALL_TERMS = ("contrast", "mix", "masked", "reconstructed", "kl", "reconstruction")


def _method(*overrides, layout=HANDS8, persons=2):
    cfg = load_config(PretrainConfig, None, [*TINY_MODEL, *overrides])
    torch.manual_seed(0)
    return build_method(cfg, layout, 3, persons)


def _batch(layout=HANDS8, n=8, t=24, persons=2):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 3, t, layout.num_joints, persons, generator=g)
    lengths = torch.randint(8, t + 1, (n,), generator=g)
    return x, lengths


def _grads(method, losses):
    method.zero_grad(set_to_none=True)
    losses["loss"].backward()
    return {name: p.grad for name, p in method.named_parameters()}


def _has_grad(grads, prefix):
    return any(g is not None and g.abs().sum() > 0 for n, g in grads.items() if n.startswith(prefix))


@pytest.mark.parametrize(("layout", "persons"), [(HANDS8, 2), (NTU25, 2), (NTU25, 1)])
def test_all_terms_finite_and_total_is_weighted_sum(layout, persons):
    method = _method(layout=layout, persons=persons)
    losses = method(*_batch(layout, persons=persons), torch.Generator().manual_seed(0))
    assert set(losses) == {*ALL_TERMS, "loss"}
    assert all(torch.isfinite(v) for v in losses.values())
    w = method.options.loss
    expected = (
        losses["contrast"]
        + losses["mix"]
        + losses["masked"]
        + losses["reconstructed"]
        + losses["kl"]
        + w.reconstruction * losses["reconstruction"]
    )
    torch.testing.assert_close(losses["loss"], expected)


def test_every_trainable_parameter_learns_and_key_encoder_does_not():
    method = _method()
    grads = _grads(method, method(*_batch(), torch.Generator().manual_seed(0)))
    trainable = [n for n, p in method.named_parameters() if p.requires_grad]
    assert all(grads[n] is not None for n in trainable), [n for n in trainable if grads[n] is None]
    assert all(grads[n] is None for n, p in method.named_parameters() if n.startswith("key_"))


def test_masked_prediction_prompt_learns_from_reconstruction_only():
    zero = [f"pcm3.loss.{t}=0" for t in ALL_TERMS if t != "reconstruction"]
    method = _method(*zero)
    grads = _grads(method, method(*_batch(), torch.Generator().manual_seed(0)))
    assert _has_grad(grads, "mp_prompt")
    method = _method("pcm3.loss.reconstruction=0")
    grads = _grads(method, method(*_batch(), torch.Generator().manual_seed(0)))
    assert not _has_grad(grads, "mp_prompt")


@pytest.mark.parametrize("guidance", [True, False])
def test_semantic_guidance_routes_contrast_gradients_into_the_decoder(guidance):
    only = [f"pcm3.loss.{t}=0" for t in ALL_TERMS if t != "reconstructed"]
    method = _method(*only, f"pcm3.loss.semantic_guidance={str(guidance).lower()}")
    losses = method(*_batch(), torch.Generator().manual_seed(0))
    assert set(losses) == {"contrast", "masked", "reconstructed", "loss"}  # computed, weight 0
    grads = _grads(method, losses)
    assert _has_grad(grads, "decoder") is guidance and _has_grad(grads, "neck") is guidance
    assert _has_grad(grads, "encoder")  # through the reconstructed view's own pass


def test_zero_weights_remove_terms():
    method = _method(
        "pcm3.loss.mix=0", "pcm3.loss.kl=0", "pcm3.loss.reconstruction=0", "pcm3.loss.masked=0",
        "pcm3.loss.reconstructed=0",
    )
    losses = method(*_batch(), torch.Generator().manual_seed(0))
    assert set(losses) == {"contrast", "loss"}


@pytest.mark.parametrize("stream", ["motion", "bone"])
def test_motion_and_bone_streams_have_no_prompts_and_no_kl(stream):
    method = _method(f"stream={stream}")
    assert method.input_prompts is None and method.cl_prompt is None and method.mp_prompt is None
    losses = method(*_batch(), torch.Generator().manual_seed(0))
    assert "kl" not in losses and torch.isfinite(losses["loss"])


def test_queue_receives_the_keys_and_key_encoder_follows_ema():
    method = _method("pcm3.moco.momentum=0.5")
    before = [p.clone() for p in method.key_encoder.parameters()]
    method(*_batch(n=8), torch.Generator().manual_seed(0))
    assert int(method.queue.ptr) == 8
    query = list(method.encoder.parameters())
    for b, after, q in zip(before, method.key_encoder.parameters(), query, strict=True):
        torch.testing.assert_close(after, 0.5 * b + 0.5 * q)


def test_same_generator_same_losses():
    method = _method()
    state = {k: v.clone() for k, v in method.state_dict().items()}
    first = method(*_batch(), torch.Generator().manual_seed(3))
    method.load_state_dict(state)
    second = method(*_batch(), torch.Generator().manual_seed(3))
    for name in first:
        torch.testing.assert_close(first[name], second[name])


def test_feature_encoder_adds_the_base_prompt():
    method = _method().eval()
    x, _ = _batch(t=16)
    enc = method.feature_encoder()
    with torch.no_grad():
        with_prompt = enc.forward_features(x)
        plain = method.encoder.forward_features(x)
        expected = method.encoder.forward_features(x, input_prompt=method.input_prompts["base"])
    torch.testing.assert_close(with_prompt, expected)
    assert not torch.allclose(with_prompt, plain)
    no_prompt = _method("model.input_prompts=false").feature_encoder()
    assert no_prompt.input_prompt is None


@pytest.mark.parametrize("mode", ["sample", "batch"])
def test_task_prompt_offsets_per_sample_or_one_per_view(mode):
    cfg = load_config(PretrainConfig, None, [*TINY_MODEL, f"model.prompt_offsets={mode}"])
    method = build_method(cfg, HANDS8, 3, 2)
    offsets = method._offsets(method.cl_prompt, 60, 3, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert offsets.shape == (60,) and 0 <= offsets.min() and offsets.max() <= 16 - 4  # half width - length
    per_view = [set(block.tolist()) for block in offsets.split(20)]
    if mode == "batch":
        assert all(len(s) == 1 for s in per_view) and len(set().union(*per_view)) > 1
    else:
        assert all(len(s) > 1 for s in per_view)


def test_official_sets_the_four_switches():
    cfg = load_config(PretrainConfig, None, ["official=true", "model.input_prompts=true"])
    assert (cfg.model.input_prompts, cfg.model.prompt_offsets, cfg.model.separate_view_calls,
            cfg.augment.shared_randomness) == (False, "batch", True, True)
    default = load_config(PretrainConfig, None, [])
    assert (default.model.input_prompts, default.model.prompt_offsets, default.model.separate_view_calls,
            default.augment.shared_randomness) == (True, "sample", False, False)
