import numpy as np
import pytest
import torch

from pcm3.augment.spatial import (
    apply_joint_corruption,
    apply_linear,
    apply_spatial_augment,
    draw_joint_corruption,
    draw_shear,
    draw_spatial_augment,
    joint_corruption,
    shear,
    spatial_augment,
)
from pcm3.errors import ConfigError


def batch(n, v, device, channels=3, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, channels, 6, v, 2, generator=g, dtype=dtype).to(device)


def reference_shear(x, s):
    """Official pose_augmentation per sample: np.dot(S, x.reshape(C, -1))."""
    out = []
    for xi, si in zip(x.cpu().double().numpy(), s.cpu().double().numpy(), strict=True):
        out.append(np.dot(si, xi.reshape(xi.shape[0], -1)).reshape(xi.shape))
    return torch.from_numpy(np.stack(out))


def reference_corruption(x, joints, zero, matrix):
    """Official joint_courruption per sample with the given joints / branch / matrix."""
    out = x.cpu().double().numpy().copy()
    for i in range(len(out)):
        idx = np.flatnonzero(joints[i].cpu().numpy())
        if bool(zero[i]):
            out[i][:, :, idx, :] = 0
        else:
            temp = out[i][:, :, idx, :].transpose(1, 2, 3, 0)  # (T, J, M, C)
            temp = np.dot(temp, matrix[i].cpu().double().numpy())  # x_row @ R
            out[i][:, :, idx, :] = temp.transpose(3, 0, 1, 2)
    return torch.from_numpy(out)


@pytest.mark.parametrize("channels", [3, 2])
def test_shear_matches_reference(layout, device, channels):
    x = batch(8, layout.num_joints, device, channels)
    g = torch.Generator().manual_seed(3)
    s = draw_shear(8, g, magnitude=0.7, channels=channels, device=device)
    assert s.shape == (8, channels, channels)
    assert (torch.diagonal(s, dim1=1, dim2=2) == 1).all()
    off = s[:, ~torch.eye(channels, dtype=torch.bool, device=device)]
    assert off.abs().max() <= 0.7 and off.abs().min() > 0
    out = apply_linear(x, s)
    torch.testing.assert_close(out.cpu().double(), reference_shear(x, s), atol=1e-5, rtol=1e-5)
    assert len({tuple(si.flatten().tolist()) for si in s}) == 8  # per-sample parameters
    same = shear(x, torch.Generator().manual_seed(3), magnitude=0.7)
    torch.testing.assert_close(same, out, rtol=0, atol=0)


def test_joint_corruption_matches_reference(layout, device):
    n, v = 16, layout.num_joints
    x = batch(n, v, device)
    params = draw_joint_corruption(n, layout, torch.Generator().manual_seed(4), device=device)
    expected_k = round(15 * v / 25)  # 15 of 25 for ntu25, 12 of 20, 5 of 8
    assert (params.joints.sum(1) == expected_k).all()
    assert params.zero.any() and (~params.zero).any()
    assert params.matrix.abs().max() <= 1
    out = apply_joint_corruption(x, params)
    ref = reference_corruption(x, params.joints, params.zero, params.matrix)
    torch.testing.assert_close(out.cpu().double(), ref, atol=1e-5, rtol=1e-5)
    same = joint_corruption(x, layout, torch.Generator().manual_seed(4))
    torch.testing.assert_close(same, out, rtol=0, atol=0)


def test_joint_corruption_selection_statistics(layout):
    n, v = 4000, layout.num_joints
    params = draw_joint_corruption(n, layout, torch.Generator().manual_seed(0), num_joints=3)
    assert (params.joints.sum(1) == 3).all()
    freq = params.joints.double().mean(0)  # every joint equally likely: 3 / V
    assert (freq - 3 / v).abs().max() < 5 * (3 / v / n) ** 0.5
    assert abs(params.zero.double().mean().item() - 0.5) < 0.05


@pytest.mark.parametrize("p", [0.5, -1.0, 1.0])
def test_spatial_augment_chooses_per_sample(layout, device, p):
    n, v = 16, layout.num_joints
    x = batch(n, v, device)
    params = draw_spatial_augment(n, layout, torch.Generator().manual_seed(9), p, device=device)
    out = apply_spatial_augment(x, params)
    sheared = reference_shear(x, params.shear)
    corrupted = reference_corruption(
        x, params.corruption.joints, params.corruption.zero, params.corruption.matrix
    )
    for i in range(n):
        ref = corrupted[i] if bool(params.use_corruption[i]) else sheared[i]
        torch.testing.assert_close(out[i].cpu().double(), ref, atol=1e-5, rtol=1e-5)
    if p < 0:
        assert not params.use_corruption.any()  # masked-source view: always shear
    if p >= 1:
        assert params.use_corruption.all()
    same = spatial_augment(x, layout, torch.Generator().manual_seed(9), p)
    torch.testing.assert_close(same, out, rtol=0, atol=0)


def test_spatial_augment_choice_frequency(layout):
    params = draw_spatial_augment(4000, layout, torch.Generator().manual_seed(1), 0.5)
    assert abs(params.use_corruption.double().mean().item() - 0.5) < 0.05


def test_bad_input_raises(layout):
    g = torch.Generator().manual_seed(0)
    x = batch(2, layout.num_joints + 1, "cpu")
    with pytest.raises(ConfigError, match="layout"):
        joint_corruption(x, layout, g)
    with pytest.raises(ConfigError, match="num_joints"):
        draw_joint_corruption(2, layout, g, num_joints=layout.num_joints + 1)
    with pytest.raises(ConfigError, match="floating"):
        shear(torch.zeros(2, 3, 4, 5, 1, dtype=torch.long), g)
