"""The official-formulation reference step of ``benchmarks/pretrain_speed.py``: it runs, gives the
same named loss terms as our PCM3 step, and its frame-by-frame encoder is our BiGRUEncoder."""

import random

import numpy as np
import pytest
import torch

from pcm3.config import load_config
from pcm3.engine.config import PretrainConfig
from pcm3.layouts import NTU25
from pcm3.methods import build_method
from pcm3.models import BiGRUEncoder, load_official_encoder, load_official_projector

from ..benchmark_scripts import load_benchmark
from ..conftest import HANDS8, TINY_MODEL

ref = load_benchmark("official_reference_step")


def _cfg():
    return load_config(PretrainConfig, None, TINY_MODEL)


def _raw_batch(layout, n=8, t_max=30, persons=2):
    rng = np.random.default_rng(0)
    data = rng.normal(size=(n, 3, t_max, layout.num_joints, persons)).astype(np.float32)
    lengths = rng.integers(10, t_max + 1, size=n)
    for i, length in enumerate(lengths):
        data[i, :, length:] = 0  # zero padding past the valid length, as in the store
    return data, lengths


@pytest.mark.parametrize("layout", [NTU25, HANDS8], ids=["ntu25", "hands8"])
def test_reference_step_runs_with_our_loss_terms(layout):
    cfg = _cfg()
    torch.manual_seed(0)
    random.seed(0)
    model = ref.OfficialPCM3(cfg, layout, 3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    data, lengths = _raw_batch(layout)
    before = model.encoder_q.encoder.gru.weight_hh_l0.detach().clone()
    queue = model.queue.clone()
    values = ref.reference_train_step(model, optimizer, data, lengths, np.random.RandomState(0))

    ours = build_method(cfg, layout, 3, 2)
    our_losses = ours(torch.from_numpy(data), torch.from_numpy(lengths), torch.Generator().manual_seed(0))
    assert set(values) == set(our_losses)
    assert all(np.isfinite(v) for v in values.values())
    w = cfg.method_options.loss
    total = (values["contrast"] + values["mix"] + values["masked"] + values["reconstructed"]
             + values["kl"] + w.reconstruction * values["reconstruction"])
    assert values["loss"] == pytest.approx(total, rel=1e-5)
    assert not torch.equal(before, model.encoder_q.encoder.gru.weight_hh_l0)  # SGD updated
    assert torch.equal(model.queue[:, 8:], queue[:, 8:]) and not torch.equal(model.queue, queue)


def test_views_have_the_view_shape():
    cfg = _cfg()
    data, lengths = _raw_batch(NTU25)
    views = ref.official_views(data, lengths, cfg, NTU25, np.random.RandomState(1))
    assert [tuple(v.shape) for v in views] == [(8, 3, cfg.augment.view_frames, 25, 2)] * 3
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in views)


def test_batch_mask_hides_the_ratio_of_parts_of_person_zero_only():
    mask = ref.joint_mask3(4, 16, NTU25, 2, 3, ratio=0.6, segment=8)
    assert tuple(mask.shape) == (4, 3, 16, 25, 2)
    assert torch.equal(mask[:, :, :, :, 1], torch.ones_like(mask[:, :, :, :, 1]))
    assert torch.equal(mask, mask[:1].expand_as(mask))  # one mask for the whole batch
    for first in (0, 8):
        hidden = {j for j in range(25) if mask[0, 0, first, j, 0] == 0}
        parts = [set(p) for p in NTU25.part_joints if set(p) <= hidden]
        assert len(parts) == 3 and hidden == set().union(*parts)
        assert torch.equal(mask[:, :, first:first + 8], mask[:, :, first:first + 1].expand(-1, -1, 8, -1, -1))


@pytest.mark.parametrize("train", [True, False])
def test_frame_by_frame_encoder_equals_our_bigru(train):
    cfg = _cfg()
    torch.manual_seed(0)
    model = ref.OfficialPCM3(cfg, NTU25, 3, 2)
    with torch.no_grad():  # non-trivial BatchNorm state
        model.encoder_q.input_norm.running_mean.uniform_(-0.3, 0.3)
        model.encoder_q.input_norm.running_var.uniform_(0.5, 2.0)
        model.encoder_q.input_norm.weight.uniform_(0.5, 1.5)
    ours = BiGRUEncoder(NTU25, 2, 3, hidden_size=cfg.model.options.hidden_size,
                        num_layers=cfg.model.options.num_layers)
    report = load_official_encoder(model.state_dict(), ours)
    assert "encoder_q.encoder.gru.weight_hh_l1_reverse" in report["loaded"].values()
    model.train(train)
    ours.train(train)
    x = torch.randn(6, 3, 12, 25, 2)
    with torch.no_grad():
        expected = model.encoder_q.features(x, all_seq=True)
        torch.testing.assert_close(ours.forward_dense(x), expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours.forward_features(x), model.encoder_q.features(x),
                                   atol=1e-5, rtol=1e-5)


def _copy_reference_weights(model, ours) -> dict[str, str]:
    """Our PCM3 holding the reference model's weights, prompts and queue; returns the encoder's
    ``{our name: reference name}``."""
    report = load_official_encoder(model.state_dict(), ours.encoder)
    load_official_projector(model.state_dict(), ours.projector)
    ours.key_encoder.load_state_dict(ours.encoder.state_dict())
    ours.key_projector.load_state_dict(ours.projector.state_dict())
    for mine, theirs in ((ours.neck.fc1, model.linear[0]), (ours.neck.norm, model.linear[1]),
                         (ours.neck.fc2, model.linear[3]), (ours.decoder.gru, model.recons_decoder.decoder),
                         (ours.decoder.output, model.recons_decoder.reconstruction)):
        mine.load_state_dict(theirs.state_dict())
    with torch.no_grad():
        ours.cl_prompt.prompt.copy_(model.cl_prompt)
        ours.mp_prompt.prompt.copy_(model.mp_prompt)
        ours.queue.keys.copy_(model.queue.T)
    return report["loaded"]


def test_official_switches_reproduce_the_reference_step_on_a_fixed_batch(monkeypatch):
    """``official: true`` (per-batch prompt offsets, one encoder call per view, no input prompts,
    batch-shared mask and mixing) gives the reference formulation's losses, gradients and
    BatchNorm statistics on the same views. Task-prompt offsets are pinned to 0 in both (prompt
    length = half the feature width - 1); the reference's input prompts sit before a train-mode
    BatchNorm, which cancels them in the forward pass: zeroed so that the running statistics
    compare too."""
    cfg = load_config(PretrainConfig, None, [*TINY_MODEL, "official=true", "model.prompt_length=15"])
    assert not cfg.model.input_prompts and cfg.augment.shared_randomness and cfg.model.separate_view_calls
    torch.manual_seed(0)
    model = ref.OfficialPCM3(cfg, HANDS8, 3, 2)
    ours = build_method(cfg, HANDS8, 3, 2)
    encoder_names = _copy_reference_weights(model, ours)
    with torch.no_grad():
        for name in ("base", "mask", "recons", "mix"):
            getattr(model, f"{name}_prompt").zero_()
    data, lengths = _raw_batch(HANDS8)
    x, lengths = torch.from_numpy(data), torch.from_numpy(lengths)
    views = ours.make_views(x, lengths, torch.Generator().manual_seed(5))
    lam = views["lam"]
    assert torch.equal(lam, lam[:1].expand_as(lam))  # one mixing draw for the batch
    monkeypatch.setattr(ref, "joint_mask3", lambda *args: views["mask"].expand_as(views["source"]).float())
    monkeypatch.setattr(ref, "ske_swap", lambda *args: (views["mixed"], views["partner"], float(lam[0])))

    ours_losses = ours(x, lengths, torch.Generator().manual_seed(5))  # draws the same views first
    theirs = model(views["query"], views["key"], views["source"])
    assert set(ours_losses) == set(theirs)
    for name, value in theirs.items():
        torch.testing.assert_close(ours_losses[name], value, atol=2e-5, rtol=1e-5, msg=name)
    ours_losses["loss"].backward()
    theirs["loss"].backward()
    theirs_params, encoder_params = dict(model.named_parameters()), dict(ours.encoder.named_parameters())
    pairs = [(encoder_params[mine], theirs_params[name]) for mine, name in encoder_names.items()
             if mine in encoder_params]
    pairs += [(ours.projector.fc1.weight, model.encoder_q.fc[0].weight),
              (ours.neck.fc1.weight, model.linear[0].weight), (ours.decoder.gru.weight_hh_l0,
                                                              model.recons_decoder.decoder.weight_hh_l0),
              (ours.cl_prompt.prompt, model.cl_prompt), (ours.mp_prompt.prompt, model.mp_prompt)]
    assert len(pairs) > 10
    for mine, reference in pairs:
        torch.testing.assert_close(mine.grad, reference.grad, atol=2e-5, rtol=1e-4)
    for mine, reference in ((ours.encoder.input_norm, model.encoder_q.input_norm),
                            (ours.neck.norm, model.linear[1])):
        torch.testing.assert_close(mine.running_mean, reference.running_mean, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(mine.running_var, reference.running_var, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.queue.keys[:8], model.queue[:, :8].T)  # the same keys enqueued


def test_default_forward_differs_from_the_official_one():
    """The switches matter: shared encoder calls normalise the views with one batch's statistics."""
    cfg = load_config(PretrainConfig, None, [*TINY_MODEL, "official=true", "model.prompt_length=15"])
    data, lengths = _raw_batch(HANDS8)
    losses = {}
    for separate in (True, False):
        cfg.model.separate_view_calls = separate
        torch.manual_seed(0)
        method = build_method(cfg, HANDS8, 3, 2)
        losses[separate] = method(torch.from_numpy(data), torch.from_numpy(lengths),
                                  torch.Generator().manual_seed(5))
    assert not torch.allclose(losses[True]["contrast"], losses[False]["contrast"])
    assert not torch.allclose(losses[True]["mix"], losses[False]["mix"])
