"""Layouts the graph and Transformer backbones are checked on, and the padding-invariance check."""

from __future__ import annotations

import torch

from pcm3.layouts import COCO17, KINECT_V1_20, MEDIAPIPE33, NTU25, layout_from_dict

# two people-less "hands", each joint group its own root: a layout with several components
TWO_HANDS_YAML = """
name: two_hands
joints: [l_wrist, l_thumb, l_index, l_index_tip, r_wrist, r_thumb, r_index]
parents: [l_wrist, l_wrist, l_wrist, l_index, r_wrist, r_wrist, r_wrist]
parts: {left: [0, 1, 2, 3], right: [4, 5, 6]}
"""
TWO_HANDS = layout_from_dict({
    "name": "two_hands",
    "joints": ["l_wrist", "l_thumb", "l_index", "l_index_tip", "r_wrist", "r_thumb", "r_index"],
    "parents": ["l_wrist", "l_wrist", "l_wrist", "l_index", "r_wrist", "r_wrist", "r_wrist"],
    "parts": {"left": [0, 1, 2, 3], "right": [4, 5, 6]},
})

# (layout, persons, channels): every layout once, 1 and 2 persons, 2D and 3D
ZOO = [(NTU25, 2, 3), (KINECT_V1_20, 1, 3), (COCO17, 1, 2), (MEDIAPIPE33, 2, 2), (TWO_HANDS, 2, 3)]
ZOO_IDS = [f"{layout.name}-M{m}-C{c}" for layout, m, c in ZOO]


def clips(n: int, c: int, t: int, v: int, m: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, c, t, v, m, generator=torch.Generator().manual_seed(seed))


def with_noisy_padding(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``x`` with large random values at frames ``>= lengths`` (what the outputs must ignore)."""
    noisy = x.clone()
    for i, length in enumerate(lengths.tolist()):
        noisy[i, :, length:] = 50 * torch.randn_like(noisy[i, :, length:])
    return noisy


def assert_padding_invariant(model: torch.nn.Module, x: torch.Tensor, lengths: torch.Tensor,
                             time_stride: int, atol: float = 1e-5) -> None:
    """Each clip's feature and its first ``ceil(L / stride)`` dense steps, computed from a padded
    batch with noisy padding, equal those of the clip cut to its length and encoded alone."""
    padded = with_noisy_padding(x, lengths)
    features = model.forward_features(padded, lengths)
    dense = model.forward_dense(padded, lengths)
    for i, length in enumerate(lengths.tolist()):
        alone = x[i:i + 1, :, :length]
        torch.testing.assert_close(features[i:i + 1], model.forward_features(alone), atol=atol, rtol=1e-4)
        steps = -(-length // time_stride)
        torch.testing.assert_close(dense[i:i + 1, :steps], model.forward_dense(alone), atol=atol, rtol=1e-4)
        assert not dense[i, steps:].any()  # steps past the clip are zero


def assert_every_parameter_gets_a_gradient(model: torch.nn.Module, x: torch.Tensor,
                                           lengths: torch.Tensor | None = None) -> None:
    model.train()
    model.zero_grad(set_to_none=True)
    (model.forward_features(x, lengths).square().mean() + model.forward_dense(x, lengths).mean()).backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"parameters without a gradient: {missing}"
