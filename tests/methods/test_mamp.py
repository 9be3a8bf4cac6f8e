"""MAMP's token arithmetic and loss against hand-written loops of the official formulas, the
method's masking ratio, and the refusal of backbones without token masking."""

from __future__ import annotations

import math
import statistics

import pytest
import torch

from pcm3.config import load_config
from pcm3.engine.config import PretrainConfig
from pcm3.errors import ConfigError
from pcm3.methods import build_method
from pcm3.methods.mamp_targets import (
    frame_motion,
    masked_token_mse,
    motion_aware_keep_index,
    normalized_targets,
    patchify,
    token_motion,
)

from ..conftest import HANDS8
from .every_method import tiny_method


def _x(*shape, seed=0):
    return torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def test_patchify_is_time_major_tokens_of_frame_major_values():
    x = _x(2, 6, 3, 2)  # (B, T, V, C), patches of 2 frames
    got = patchify(x, 2)
    for b in range(2):
        for p in range(3):
            for v in range(3):
                want = [float(x[b, p * 2 + f, v, c]) for f in range(2) for c in range(2)]
                assert got[b, p * 3 + v].tolist() == want
    with pytest.raises(ConfigError, match="multiple of 4"):
        patchify(x, 4)


def test_frame_motion_and_token_motion():
    x = _x(1, 5, 2, 3)
    motion = frame_motion(x, stride=2)
    for t in range(5):
        want = x[0, t + 2] - x[0, t] if t + 2 < 5 else torch.zeros(2, 3, dtype=torch.float64)
        assert torch.equal(motion[0, t], want)
    patches = _x(1, 4 * 2, 3, seed=1)  # P=4 patches x V=2 joints, 3 values
    got = token_motion(patches, num_joints=2)
    for p in range(4):
        for v in range(2):
            q = max(p, 1)
            diff = [abs(float(patches[0, q * 2 + v, f] - patches[0, (q - 1) * 2 + v, f])) for f in range(3)]
            assert got[0, p * 2 + v].item() == pytest.approx(sum(diff) / 3)


def test_normalized_targets_and_masked_mse():
    patches = _x(1, 3, 4)
    got = normalized_targets(patches)
    for i in range(3):
        row = patches[0, i].tolist()
        mean, var = statistics.fmean(row), statistics.variance(row)
        assert got[0, i].tolist() == pytest.approx([(r - mean) / math.sqrt(var + 1e-6) for r in row])
    prediction, target = _x(2, 3, 4, seed=2), _x(2, 3, 4, seed=3)
    mask = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    errors = [sum((float(prediction[b, i, f] - target[b, i, f])) ** 2 for f in range(4)) / 4
              for b in range(2) for i in range(3) if mask[b, i] == 1]
    assert float(masked_token_mse(prediction, target, mask)) == pytest.approx(sum(errors) / len(errors))


def test_motion_aware_masking_follows_the_gumbel_ranking():
    motion = torch.tensor([[0.0, 0.1, 2.0, 0.3, 0.0, 1.0]], dtype=torch.float64)
    keep_index, mask = motion_aware_keep_index(motion, 2, tau=0.8, generator=torch.Generator().manual_seed(5))
    u = torch.rand(1, 6, generator=torch.Generator().manual_seed(5)).tolist()[0]
    m = motion[0].tolist()
    scaled = [v / (max(m) * 0.8 + 1e-10) for v in m]
    log_z = math.log(sum(math.exp(s) for s in scaled))
    noise = [s - log_z - math.log(-math.log(ui + 1e-10) + 1e-10) for s, ui in zip(scaled, u, strict=True)]
    want = sorted(range(6), key=lambda i: noise[i])[:2]
    assert keep_index[0].tolist() == want
    assert mask[0].tolist() == [0.0 if i in want else 1.0 for i in range(6)]


def test_high_motion_tokens_are_masked_more_often():
    motion = torch.tensor([[0.0] * 8 + [5.0] * 8])
    kept = torch.zeros(16)
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        keep_index, _ = motion_aware_keep_index(motion, 4, tau=0.8, generator=g)
        kept[keep_index[0]] += 1
    assert kept[:8].sum() > 2 * kept[8:].sum()  # uniform masking would keep both halves alike
    _, uniform = motion_aware_keep_index(motion, 4, tau=0.0, generator=g)
    assert uniform.sum() == 12


def test_method_masks_ninety_percent_and_refuses_backbones_without_token_masking():
    cfg = load_config(PretrainConfig, None, [*tiny_method("mamp"), "mamp.mask_ratio=0.9"])
    method = build_method(cfg, HANDS8, 3, 2)
    tokens = method.patches * HANDS8.num_joints
    assert method.keep == int(tokens * 0.1)
    with pytest.raises(ConfigError, match="backbones 'mamp' supports: transformer"):
        load_config(PretrainConfig, None, ["method=mamp", "model.backbone=bigru"])
    with pytest.raises(ConfigError, match="multiple"):
        build_method(load_config(PretrainConfig, None, [*tiny_method("mamp"), "augment.view_frames=18"]),
                     HANDS8, 3, 2)
