import numpy as np
import pytest
import torch
from torch import nn

from pcm3.config import from_dict
from pcm3.data import open_store
from pcm3.errors import ConfigError
from pcm3.tasks.base import TaskContext, get_task, raw_encoder
from pcm3.tasks.encoders import LoadedEncoder
from pcm3.tasks.occlusion import draw_occlusion_masks, occlusion_masks

from ..conftest import HANDS8


class RecordingEncoder(nn.Module):
    """Raw coordinates (times ``scale``) that remembers every input it was given."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.feature_dim = 3 * 16 * 8 * 2
        self.inputs: list[torch.Tensor] = []

    def forward_features(self, x, lengths=None):
        self.inputs.append(x.clone())
        return x.flatten(1) * self.scale


def _run(encoder, store_path, seed=0, out_dir=None, **overrides):
    spec = get_task("occlusion")
    ctx = TaskContext(encoder, store_path, torch.device("cpu"), seed, out_dir)
    return spec.run(ctx, from_dict(spec.config, {"epochs": 5, **overrides}))


def test_every_run_and_encoder_sees_the_same_occluded_test_set(tiny_store_path):
    a, b = RecordingEncoder(1.0), RecordingEncoder(3.0)
    _run(LoadedEncoder(a, HANDS8, "joint", 16, "a"), tiny_store_path, seed=0)
    _run(LoadedEncoder(b, HANDS8, "joint", 16, "b"), tiny_store_path, seed=7)
    assert len(a.inputs) == len(b.inputs) == 4  # train clean, test clean, spatial, temporal
    for x, y in zip(a.inputs, b.inputs, strict=True):
        assert torch.equal(x, y)
    _, clean, spatial, temporal = a.inputs
    assert clean.shape == spatial.shape == temporal.shape == (8, 3, 16, 8, 2)
    zero_joint = (spatial == 0).all(dim=(1, 2, 4))  # (N, V)
    assert torch.equal(spatial, torch.where(zero_joint[:, None, None, :, None], 0.0, clean))
    left, right = zero_joint[:, :4], zero_joint[:, 4:]
    # HANDS8 has two parts: exactly one whole arm is hidden (never both)
    assert ((left.all(1) & ~right.any(1)) | (right.all(1) & ~left.any(1))).all()
    zero_frame = (temporal == 0).all(dim=(1, 3, 4))  # (N, T)
    assert torch.equal(temporal, torch.where(zero_frame[:, None, :, None, None], 0.0, clean))
    for row in zero_frame:
        hidden = torch.nonzero(row).flatten()
        assert 5 <= len(hidden) <= 11 and int(hidden[-1] - hidden[0]) + 1 == len(hidden)  # one block


def test_masks_depend_on_the_mask_seed_only():
    a = draw_occlusion_masks(50, HANDS8, 16, (0.3, 0.7), mask_seed=0)
    b = draw_occlusion_masks(50, HANDS8, 16, (0.3, 0.7), mask_seed=0)
    c = draw_occlusion_masks(50, HANDS8, 16, (0.3, 0.7), mask_seed=1)
    assert torch.equal(a.spatial, b.spatial) and torch.equal(a.temporal, b.temporal)
    assert not torch.equal(a.temporal, c.temporal)
    assert a.spatial.shape == (50, 8) and a.temporal.shape == (50, 16)


def test_masks_are_cached_in_the_output_folder_not_in_the_store(tiny_store_path, tmp_path):
    before = sorted(p.name for p in tiny_store_path.rglob("*"))
    metrics = _run(raw_encoder(HANDS8, 3, 2, 16), tiny_store_path, out_dir=tmp_path)
    assert set(metrics) == {"top1_clean", "top1_spatial", "top1_temporal"}
    assert metrics["top1_clean"] == 100.0 and metrics["top1_temporal"] < 100.0
    assert sorted(p.name for p in tiny_store_path.rglob("*")) == before
    (saved,) = (tmp_path / "occlusion_masks").iterdir()
    test = open_store(tiny_store_path).split("xsub/val")
    assert saved.name.startswith(f"{test.fingerprint}_xsub_val_seed0_T16")
    # the saved file is what later runs use
    with np.load(saved) as data:
        spatial, temporal, ids = data["spatial"], data["temporal"], data["ids"]
    np.savez(saved, spatial=np.ones_like(spatial), temporal=temporal, ids=ids)
    cached = occlusion_masks(test, 16, (0.3, 0.7), 0, tmp_path / "occlusion_masks")
    assert cached.spatial.all()
    fresh = occlusion_masks(test, 16, (0.3, 0.7), 0, None)
    assert torch.equal(fresh.temporal, torch.from_numpy(temporal)) and not fresh.spatial.all()


def test_bad_ratio():
    with pytest.raises(ConfigError, match="ratio"):
        from_dict(get_task("occlusion").config, {"ratio": [0.5, 0.2]})
