"""The official-formulation steps of SkeletonCLR, CMD and MAMP (``benchmarks/reference_*_step.py``):
each runs on a tiny config with our loss terms, and with our weights and views gives our losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pcm3.layouts import NTU25
from pcm3.methods import build_method
from pcm3.methods.registry import load_builtin_methods

from ..benchmark_scripts import load_benchmark

speed = load_benchmark("method_speed")
METHODS = ("skeletonclr", "cmd", "mamp")
load_builtin_methods()


def _config(method: str):
    cfg = speed.method_config("tiny", method, speed.PAPER_BACKBONES[method], "fp32")
    if method == "skeletonclr":
        cfg.model.options.dropout = 0.0  # ST-GCN dropout draws differ between two models
    return cfg


def _reference(method: str):
    return load_benchmark(speed.REFERENCES[method][0])


def _raw_batch(n: int = 6, t_max: int = 30):
    rng = np.random.default_rng(0)
    data = np.cumsum(rng.normal(scale=0.1, size=(n, 3, t_max, 25, 2)), axis=2).astype(np.float32)
    lengths = rng.integers(18, t_max + 1, size=n)
    for i, length in enumerate(lengths):
        data[i, :, length:] = 0  # zero past the valid length, as in the store
    return data, lengths


@pytest.mark.parametrize("method", METHODS)
def test_reference_step_runs_with_our_loss_terms(method):
    cfg = _config(method)
    module = _reference(method)
    torch.manual_seed(0)
    model = getattr(module, speed.REFERENCES[method][1])(cfg, NTU25, 3, 2).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    before = [p.detach().clone() for p in model.parameters() if p.requires_grad]
    data, lengths = _raw_batch()
    values = module.reference_train_step(model, optimizer, data, lengths, np.random.RandomState(0))
    ours = build_method(cfg, NTU25, 3, 2)(torch.from_numpy(data), torch.from_numpy(lengths),
                                          torch.Generator().manual_seed(0))
    assert set(values) == set(ours)
    assert all(np.isfinite(v) for v in values.values())
    after = [p for p in model.parameters() if p.requires_grad]
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))  # the optimiser stepped


def _identical_views(method, ours, x, lengths):
    """Our views of one generator draw; our method then reuses them, the reference gets their joints."""
    if method == "mamp":
        view = ours.make_view(x, lengths, torch.Generator().manual_seed(3))
        ours.make_view = lambda *args: view
        return (view,)
    views = ours.make_views(x, lengths, torch.Generator().manual_seed(3))
    ours.make_views = lambda *args: views
    return tuple(v["joint"] for v in views) if method == "cmd" else views


@pytest.mark.parametrize("method", METHODS)
def test_reference_loss_equals_ours_on_our_weights_and_views(method):
    cfg = _config(method)
    module = _reference(method)
    torch.manual_seed(0)
    ours = build_method(cfg, NTU25, 3, 2).train()
    model = getattr(module, speed.REFERENCES[method][1])(cfg, NTU25, 3, 2).train()
    module.copy_weights_from(model, ours)
    data, lengths = _raw_batch()
    x, lens = torch.from_numpy(data), torch.from_numpy(lengths)
    views = _identical_views(method, ours, x, lens)
    mine = ours(x, lens, torch.Generator().manual_seed(11))
    torch.manual_seed(11)  # MAMP: the reference draws its masking noise from the global generator
    theirs = model(*views)
    assert set(mine) == set(theirs)
    for name, value in theirs.items():
        torch.testing.assert_close(mine[name], value, atol=1e-5, rtol=1e-5, msg=name)
    mine["loss"].backward()
    theirs["loss"].backward()
    first_ours = next(p for p in ours.encoder.parameters() if p.grad is not None)
    assert first_ours.grad.abs().sum() > 0
    if method == "skeletonclr":
        torch.testing.assert_close(ours.queue.keys, model.queue.T, atol=1e-6, rtol=1e-5)
        assert int(ours.queue.ptr) == int(model.queue_ptr) == x.shape[0]
    if method == "cmd":
        for m, suffix in module.SUFFIX.items():
            torch.testing.assert_close(ours.stream_queues[m].keys, getattr(model, f"queue{suffix}").T,
                                       atol=1e-6, rtol=1e-5)


def test_mirror_padded_crop_keeps_t_frames_of_the_padded_clip():
    module = _reference("skeletonclr")
    x = np.arange(6, dtype=np.float32).reshape(1, 6, 1, 1)
    padded = [1, 0, 0, 1, 2, 3, 4, 5, 5, 4]  # T // 3 = 2 mirrored frames each side
    rng = np.random.RandomState(4)
    starts = set()
    for _ in range(30):
        out = module.temporal_crop_numpy(x, 3, rng)[0, :, 0, 0].tolist()
        start = next(s for s in range(5) if padded[s:s + 6] == out)
        starts.add(start)
    assert starts == set(range(5))


def test_shear_has_a_unit_diagonal_and_bounded_off_diagonals():
    module = _reference("skeletonclr")
    x = np.zeros((3, 1, 3, 1))
    x[:, 0, :, 0] = np.eye(3)  # joint j holds the unit vector e_j: the output columns are the matrix rows
    out = module.shear_numpy(x, 0.5, np.random.RandomState(0))[:, 0, :, 0]
    np.testing.assert_allclose(np.diag(out), 1.0)
    off = out[~np.eye(3, dtype=bool)]
    assert np.all(np.abs(off) <= 0.5) and np.all(off != 0)


def test_rotation_matrices_are_rotations_about_x_y_z():
    module = _reference("mamp")
    angles = torch.tensor([[0.3, 0.0, 0.0], [0.0, 0.0, 0.2], [0.1, -0.2, 0.25]])
    r = module._rotation(angles)
    torch.testing.assert_close(r @ r.transpose(1, 2), torch.eye(3).expand(3, 3, 3), atol=1e-6, rtol=0)
    c, s = np.cos(0.3), np.sin(0.3)
    torch.testing.assert_close(r[0], torch.tensor([[1, 0, 0], [0, c, s], [0, -s, c]], dtype=torch.float32))
    c, s = np.cos(0.2), np.sin(0.2)
    torch.testing.assert_close(r[1], torch.tensor([[c, s, 0], [-s, c, 0], [0, 0, 1]], dtype=torch.float32))


@pytest.mark.parametrize("method", METHODS)
def test_views_have_the_view_shape(method):
    cfg = _config(method)
    module = _reference(method)
    data, lengths = _raw_batch()
    rng = np.random.RandomState(1)
    if method == "mamp":
        views = (module.mamp_views(data, cfg, rng),)
    elif method == "cmd":
        views = module.cmd_views(data, lengths, cfg, NTU25, rng)
    else:
        views = module.skeletonclr_views(data, lengths, cfg, rng)
    assert all(tuple(v.shape) == (6, 3, cfg.augment.view_frames, 25, 2) for v in views)
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in views)
